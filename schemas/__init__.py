"""marshmallow schemas: the single definition of every payload and document shape.

Record payloads, rule files, import rows and export documents are defined here;
bad input fails here, with the field path.
"""
