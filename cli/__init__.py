"""The ``creditbank`` command line: thin Click commands over the service layer."""
