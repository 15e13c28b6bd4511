"""One schema per record kind and version: the only definition of each payload's shape."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from creditbank.domain.vocab import (
    AWARD_LEVEL_ALIASES,
    AWARD_LEVELS,
    CERTIFICATE_LEVEL_ALIASES,
    CERTIFICATE_LEVELS,
    EXAM_MODULES,
    ISSUER_KINDS,
    OUTCOME_KINDS,
    QUOTA_PERIODS,
    SCHOOL_LEVEL_ALIASES,
    SCHOOL_LEVELS,
    SUSPENSION_REASONS,
)

from .fields import Choice, Code, Day, DecimalString, Hash, PlainText, UtcTime

PLAIN = PlainText()


def text(longest: int = 500, shortest: int = 1) -> list[validate.Validator]:
    """The validators of a free-text field: its length, and plain text (:class:`PlainText`)."""
    return [validate.Length(min=shortest, max=longest), PLAIN]


TEXT = text()


class Strict(Schema):
    """Unknown fields are refused, so a typo never silently disappears.

    Checks across fields go in :meth:`cross_check`, the one schema-level hook
    (``schemas.normal_form`` runs it too, so no schema adds hooks of its own).
    """

    class Meta:
        """Refuse unknown fields; keep declaration order."""

        unknown = "raise"
        ordered = True

    @validates_schema
    def _cross_checked(self, data: dict[str, Any], **kwargs: Any) -> None:
        self.cross_check(data)

    def cross_check(self, data: dict[str, Any]) -> None:
        """Check rules across the loaded fields of ``data``; none unless a schema adds them.

        Raises:
            ValidationError: a rule is broken (naming the field it is reported on).
        """


class KeyEntry(Strict):
    """A key announced in a payload: key id, base64 raw public key, optional role and owner."""

    id = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{32}\Z"))
    public = fields.String(required=True)
    role = fields.String(validate=text(32, 0))
    owner = Code()


# -- accounts -------------------------------------------------------------------------


class AccountOpened(Strict):
    """``account.opened/1``: a new account, known in the log only by salted identity hashes."""

    national_id_hash = Hash(required=True)
    name_hash = Hash(required=True)


class IdentityLinked(Strict):
    """``account.identity_linked/1``: a further identity (salted hash) linked to the account."""

    identity_type = Choice(("national_id", "passport", "student_number", "other"), required=True)
    identity_hash = Hash(required=True)


class AccountEnrolled(Strict):
    """``account.enrolled/1``: enrolment in a programme with its maximum study period (弹性学制).

    ``programme_version`` is the published version the learner is held to.
    """

    programme = Code(required=True)
    programme_version = fields.Integer(validate=validate.Range(min=1))
    school = Code(required=True)
    enrolled_on = Day(required=True)
    max_study_years = fields.Integer(required=True, validate=validate.Range(1, 12))


class ProgrammeMoved(Strict):
    """``account.programme_moved/1``: a registrar moves a learner to another programme version."""

    programme = Code(required=True)
    programme_version = fields.Integer(required=True, validate=validate.Range(min=1))
    reason = fields.String(required=True, validate=TEXT)


class AccountSuspended(Strict):
    """``account.suspended/1``: study suspended with status kept (保留学籍休学), with the reason.

    ``suspended_on`` is the day study stopped (records written before it existed
    stopped on the day they were recorded).
    """

    reason = Choice(SUSPENSION_REASONS, required=True)
    suspended_on = Day()
    note = fields.String(validate=TEXT)


class AccountResumed(Strict):
    """``account.resumed/1``: study resumed after a suspension, on ``resumed_on``.

    Records written before ``resumed_on`` existed resumed on the day they were recorded.
    """

    resumed_on = Day()
    note = fields.String(validate=TEXT)


class AccountGraduated(Strict):
    """``account.graduated/1``: the programme completed."""

    programme = Code(required=True)
    graduated_on = Day(required=True)


class AccountWithdrawn(Strict):
    """``account.withdrawn/1``: the learner left the programme."""

    reason = fields.String(required=True, validate=TEXT)


class AccountErased(Strict):
    """``account.erased/1``: the learner's personal data was erased; carries none itself."""


# -- issuers, keys, accreditations ------------------------------------------------------


class IssuerRegistered(Strict):
    """``issuer.registered/1``: an issuer with its names and first key."""

    issuer = Code(required=True)
    kind = Choice(ISSUER_KINDS, required=True)
    school_level = Choice(SCHOOL_LEVELS, SCHOOL_LEVEL_ALIASES)
    name_zh = fields.String(required=True, validate=TEXT)
    name_en = fields.String(required=True, validate=TEXT)
    keys = fields.List(fields.Nested(KeyEntry), required=True, validate=validate.Length(min=1))

    def cross_check(self, data: dict[str, Any]) -> None:
        """A school has a ``school_level``; no other kind of issuer has one."""
        if (data.get("kind") == "school") != ("school_level" in data):
            raise ValidationError("a school needs a school_level; others have none", "school_level")


class KeyRotated(Strict):
    """``issuer.key_rotated/1``: a new key replaces an old one (signed by old key or authority)."""

    issuer = Code(required=True)
    replaces = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{32}\Z"))
    keys = fields.List(fields.Nested(KeyEntry), required=True, validate=validate.Length(equal=1))


class KeyRevoked(Strict):
    """``issuer.key_revoked/1``: a key revoked from the time it was compromised."""

    issuer = Code(required=True)
    key = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{32}\Z"))
    compromised_at = UtcTime(required=True)
    reason = fields.String(required=True, validate=TEXT)


class Quota(Strict):
    """An issuance quota: at most ``count`` outcomes per ``period``."""

    count = fields.Integer(required=True, validate=validate.Range(min=1))
    period = Choice(QUOTA_PERIODS, required=True)


class AccreditationGranted(Strict):
    """``accreditation.granted/1``: what an issuer may issue, for which scope and period."""

    accreditation = Code(required=True)
    issuer = Code(required=True)
    outcome_kinds = fields.List(
        Choice(OUTCOME_KINDS), required=True, validate=validate.Length(min=1)
    )
    programmes = fields.List(Code())
    certificate_categories = fields.List(Code())
    levels = fields.List(Choice(CERTIFICATE_LEVELS, CERTIFICATE_LEVEL_ALIASES))
    valid_from = UtcTime(required=True)
    valid_until = UtcTime(required=True)
    quota = fields.Nested(Quota)

    def cross_check(self, data: dict[str, Any]) -> None:
        """``valid_until`` comes after ``valid_from``."""
        if (
            "valid_from" in data
            and "valid_until" in data
            and data["valid_until"] <= data["valid_from"]
        ):
            raise ValidationError("must be after valid_from", "valid_until")


class AccreditationChanged(Strict):
    """``accreditation.suspended|reinstated|withdrawn/1``: a status change with its reason."""

    accreditation = Code(required=True)
    reason = fields.String(required=True, validate=TEXT)


# -- learning outcomes ------------------------------------------------------------------


class OutcomeBase(Strict):
    """Fields every learning outcome carries: its issuer and the accreditation it is under.

    ``source_ref`` is the issuer's own reference for the outcome (e.g. a row of an
    imported file); an issuer never issues two outcomes with one reference.
    ``reissue_of`` names the outcome this one issues again: the same outcome, first
    signed under a key later revoked as compromised from before its signing, and
    revoked since (see :mod:`creditbank.admission`).
    """

    issuer = Code(required=True)
    accreditation = Code(required=True)
    source_ref = fields.String(validate=validate.Regexp(r"^[\x21-\x7e]{1,128}\Z"))
    reissue_of = fields.Integer(validate=validate.Range(min=1))


class CourseCredit(OutcomeBase):
    """``outcome.course/1``: course credits (课程学分)."""

    course_code = Code(required=True)
    course_title = fields.String(required=True, validate=TEXT)
    programme = Code(required=True)
    credits = DecimalString(required=True)
    grade = fields.String(validate=text(16))
    score = DecimalString()
    term = fields.String(required=True, validate=text(32))

    def cross_check(self, data: dict[str, Any]) -> None:
        """A score is at most 100; credits are more than 0 and at most 60."""
        if "score" in data and data["score"] > 100:
            raise ValidationError("must be between 0 and 100", "score")
        if "credits" in data and not 0 < data["credits"] <= 60:
            raise ValidationError("must be more than 0 and at most 60", "credits")


class Diploma(OutcomeBase):
    """``outcome.diploma/1``: the academic diploma (学历证书, the "1")."""

    level = Choice(SCHOOL_LEVELS, SCHOOL_LEVEL_ALIASES, required=True)
    programme = Code(required=True)
    programme_name = fields.String(required=True, validate=TEXT)
    graduated_on = Day(required=True)


class ExamModule(Strict):
    """A part of a certificate exam (理论 theory / 实操 practical) and whether it was passed."""

    module = Choice(EXAM_MODULES, {"理论": "theory", "实操": "practical"}, required=True)
    passed = fields.Boolean(required=True)
    score = DecimalString()


class Certificate(OutcomeBase):
    """``outcome.certificate/1``: a skill level certificate (职业技能等级证书, the "X")."""

    certificate_code = Code(required=True)
    certificate_name = fields.String(required=True, validate=TEXT)
    category = Code(required=True)
    level = Choice(CERTIFICATE_LEVELS, CERTIFICATE_LEVEL_ALIASES, required=True)
    issued_on = Day(required=True)
    valid_until = Day()
    modules = fields.List(fields.Nested(ExamModule))

    def cross_check(self, data: dict[str, Any]) -> None:
        """``valid_until`` comes after ``issued_on``."""
        if (
            "valid_until" in data
            and "issued_on" in data
            and data["valid_until"] <= data["issued_on"]
        ):
            raise ValidationError("must be after issued_on", "valid_until")


class Training(OutcomeBase):
    """``outcome.training/1``: a training certificate (培训证书)."""

    title = fields.String(required=True, validate=TEXT)
    category = Code()
    hours = DecimalString(required=True)
    completed_on = Day(required=True)


class Award(OutcomeBase):
    """``outcome.award/1``: a competition award (技能大赛获奖) with its level and rank."""

    competition = fields.String(required=True, validate=TEXT)
    category = Code()
    level = Choice(AWARD_LEVELS, AWARD_LEVEL_ALIASES, required=True)
    rank = fields.String(required=True, validate=text(32))
    awarded_on = Day(required=True)


class Innovation(OutcomeBase):
    """``outcome.innovation/1``: innovation or entrepreneurship activity (创新创业)."""

    activity = fields.String(required=True, validate=TEXT)
    activity_type = Choice(("startup", "patent", "project", "paper", "other"), required=True)
    description = fields.String(validate=TEXT)
    hours = DecimalString()
    completed_on = Day(required=True)


class OtherLearning(OutcomeBase):
    """``outcome.other/1``: other recognised learning."""

    title = fields.String(required=True, validate=TEXT)
    description = fields.String(validate=TEXT)
    completed_on = Day(required=True)


class OutcomeRevoked(Strict):
    """``outcome.revoked/1``: an outcome revoked, naming it by seq and leaf hash."""

    outcome = fields.Integer(required=True, validate=validate.Range(min=0))
    outcome_hash = Hash(required=True)
    reason = fields.String(required=True, validate=TEXT)


class StatusEntry(Strict):
    """One exported record's Bitstring Status List entry: list number and bit position."""

    record = fields.Integer(required=True, validate=validate.Range(min=0))
    list = fields.Integer(required=True, validate=validate.Range(min=1))
    position = fields.Integer(required=True, validate=validate.Range(min=0))


class StatusAssigned(Strict):
    """``credential.status_assigned/1``: status list entries given to exported records.

    Written when records are first exported, so the audit can hold every published
    status bit to the record it stands for.
    """

    entries = fields.List(
        fields.Nested(StatusEntry), required=True, validate=validate.Length(min=1)
    )

    def cross_check(self, data: dict[str, Any]) -> None:
        """Each record and each (list, position) at most once."""
        entries = data.get("entries", [])
        if len({e["record"] for e in entries}) != len(entries):
            raise ValidationError("a record is given two entries", "entries")
        if len({(e["list"], e["position"]) for e in entries}) != len(entries):
            raise ValidationError("two records are given the same entry", "entries")


OUTCOME_SCHEMAS: dict[str, type[Schema]] = {
    "course": CourseCredit,
    "diploma": Diploma,
    "certificate": Certificate,
    "training": Training,
    "award": Award,
    "innovation": Innovation,
    "other": OtherLearning,
}

PAYLOAD_SCHEMAS: dict[str, type[Schema]] = {
    "account.opened/1": AccountOpened,
    "account.identity_linked/1": IdentityLinked,
    "account.enrolled/1": AccountEnrolled,
    "account.programme_moved/1": ProgrammeMoved,
    "account.suspended/1": AccountSuspended,
    "account.resumed/1": AccountResumed,
    "account.graduated/1": AccountGraduated,
    "account.withdrawn/1": AccountWithdrawn,
    "account.erased/1": AccountErased,
    "issuer.registered/1": IssuerRegistered,
    "issuer.key_rotated/1": KeyRotated,
    "issuer.key_revoked/1": KeyRevoked,
    "accreditation.granted/1": AccreditationGranted,
    "accreditation.suspended/1": AccreditationChanged,
    "accreditation.reinstated/1": AccreditationChanged,
    "accreditation.withdrawn/1": AccreditationChanged,
    "outcome.revoked/1": OutcomeRevoked,
    "credential.status_assigned/1": StatusAssigned,
    **{f"outcome.{kind}/1": schema for kind, schema in OUTCOME_SCHEMAS.items()},
}


# -- programmes (学分制) ------------------------------------------------------------------


class ProgrammeCourse(Strict):
    """A course of a programme and its credits."""

    course_code = Code(required=True)
    title = fields.String(required=True, validate=TEXT)
    credits = DecimalString(required=True)


class ElectiveGroup(Strict):
    """Elective courses of which at least ``min_credits`` must be earned."""

    group = Code(required=True)
    title = fields.String(required=True, validate=TEXT)
    min_credits = DecimalString(required=True)
    courses = fields.List(
        fields.Nested(ProgrammeCourse), required=True, validate=validate.Length(min=1)
    )


class ProgrammePublished(Strict):
    """``programme.published/1``: a programme (专业) and its credit requirements, one version."""

    code = Code(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    name = fields.String(required=True, validate=TEXT)
    level = Choice(SCHOOL_LEVELS, SCHOOL_LEVEL_ALIASES, required=True)
    school = Code(required=True)
    total_credits = DecimalString(required=True)
    max_study_years = fields.Integer(required=True, validate=validate.Range(1, 12))
    max_converted_share = DecimalString(required=True)
    required = fields.List(fields.Nested(ProgrammeCourse), required=True)
    electives = fields.List(fields.Nested(ElectiveGroup), load_default=list)

    def cross_check(self, data: dict[str, Any]) -> None:
        """Share in [0, 1]; each course once; elective groups and the total can be met."""
        share = data.get("max_converted_share")
        if share is not None and not 0 <= share <= 1:
            raise ValidationError(
                "must be between 0 and 1 (a share of total_credits)", "max_converted_share"
            )
        codes = [c["course_code"] for c in data.get("required", [])]
        codes += [c["course_code"] for g in data.get("electives", []) for c in g["courses"]]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValidationError(f"course {repeated[0]} appears more than once", "required")
        for group in data.get("electives", []):
            offered = sum((c["credits"] for c in group["courses"]), Decimal(0))
            if group["min_credits"] > offered:
                raise ValidationError(
                    f"group {group['group']} needs {group['min_credits']}, offers {offered}",
                    "electives",
                )
        if "total_credits" in data:
            floor = sum((c["credits"] for c in data.get("required", [])), Decimal(0))
            floor += sum((g["min_credits"] for g in data.get("electives", [])), Decimal(0))
            if floor > data["total_credits"]:
                raise ValidationError(
                    f"required courses and elective minimums need {floor} credits, over the total",
                    "total_credits",
                )


PAYLOAD_SCHEMAS["programme.published/1"] = ProgrammePublished


# -- conversion rules (转换规则) ----------------------------------------------------------

RULE_KINDS = ("course_exemption", "credit_conversion", "exam_exemption")
_LEAF_FIELDS: dict[str, fields.Field[Any]] = {
    "outcome": Choice(OUTCOME_KINDS, required=True),
    "category": Code(),
    "code": Code(),
    "min_level": Choice(CERTIFICATE_LEVELS, CERTIFICATE_LEVEL_ALIASES),
    "programme": Code(),
    "diploma_level": Choice(SCHOOL_LEVELS, SCHOOL_LEVEL_ALIASES),
    "award_levels": fields.List(Choice(AWARD_LEVELS, AWARD_LEVEL_ALIASES)),
    "ranks": fields.List(fields.String(validate=text(32))),
    "grades": fields.List(fields.String(validate=text(16))),
    "min_score": DecimalString(),
}
SourceCondition = Schema.from_dict(_LEAF_FIELDS, name="SourceCondition")


class Condition(fields.Field[dict[str, Any]]):
    """``{"all": [...]}``, ``{"any": [...]}`` or one source condition (``outcome`` plus filters)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("expected an object: all, any, or a source condition")
        if set(value) & {"all", "any"}:
            if len(value) != 1:
                raise ValidationError("all/any stands alone in its object")
            ((op, items),) = value.items()
            if not isinstance(items, list) or not items:
                raise ValidationError(f"{op}: expected a non-empty list")
            return {op: [self._deserialize(item, attr, data) for item in items]}
        try:
            loaded: dict[str, Any] = SourceCondition(unknown="raise").load(value)
        except ValidationError as e:
            raise ValidationError(e.messages) from e
        return loaded

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        if "all" in value or "any" in value:
            ((op, items),) = value.items()
            return {op: [self._serialize(item, attr, obj) for item in items]}
        dumped: dict[str, Any] = SourceCondition().dump(value)
        return dumped


class Grant(Strict):
    """What a rule grants: exempted courses, converted credits, or exam modules."""

    courses = fields.List(Code())
    credits = DecimalString()
    credits_per_hour = DecimalString()
    to_course = Code()
    to_group = Code()
    certificate_category = Code()
    modules = fields.List(Choice(EXAM_MODULES, {"理论": "theory", "实操": "practical"}))


class RuleLoaded(Strict):
    """``rule.loaded/1``: a conversion or exemption rule, one version, signed by the authority."""

    id = Code(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    title = fields.String(required=True, validate=TEXT)
    kind = Choice(RULE_KINDS, required=True)
    programme = Code()
    effective_from = UtcTime(required=True)
    effective_until = UtcTime()
    max_source_age_years = fields.Integer(validate=validate.Range(1, 50))
    when = Condition(required=True)
    grant = fields.Nested(Grant, required=True)

    def cross_check(self, data: dict[str, Any]) -> None:
        """The grant fits the rule's kind; ``effective_until`` comes after ``effective_from``."""
        kind, grant = data.get("kind"), data.get("grant", {})
        if kind in ("course_exemption", "credit_conversion") and "programme" not in data:
            raise ValidationError(f"a {kind} rule names its programme", "programme")
        if kind == "course_exemption" and not grant.get("courses"):
            raise ValidationError("a course_exemption grants courses", "grant")
        if kind == "credit_conversion" and (
            ("credits" in grant) == ("credits_per_hour" in grant)
            or ("to_course" in grant) == ("to_group" in grant)
        ):
            raise ValidationError(
                "a credit_conversion grants credits or credits_per_hour, to_course or to_group",
                "grant",
            )
        if kind == "exam_exemption" and not (
            grant.get("modules") and grant.get("certificate_category")
        ):
            raise ValidationError(
                "an exam_exemption grants modules of a certificate_category", "grant"
            )
        until = data.get("effective_until")
        if until is not None and "effective_from" in data and until <= data["effective_from"]:
            raise ValidationError("must be after effective_from", "effective_until")


PAYLOAD_SCHEMAS["rule.loaded/1"] = RuleLoaded


class ConversionInput(Strict):
    """A source outcome of a conversion, named by seq and leaf hash."""

    seq = fields.Integer(required=True, validate=validate.Range(min=0))
    hash = Hash(required=True)


class ConversionGranted(Strict):
    """``conversion.granted/1``: one exemption or conversion, with the rule and inputs behind it."""

    programme = Code(required=True)
    programme_version = fields.Integer(required=True, validate=validate.Range(min=1))
    rule = Code(required=True)
    rule_version = fields.Integer(required=True, validate=validate.Range(min=1))
    kind = Choice(("course_exemption", "credit_conversion"), required=True)
    requirement = fields.String(
        required=True,
        validate=validate.Regexp(r"^(course|group):[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z"),
    )
    credits = DecimalString(required=True)
    inputs = fields.List(
        fields.Nested(ConversionInput), required=True, validate=validate.Length(min=1)
    )
    title = fields.String(required=True, validate=TEXT)


PAYLOAD_SCHEMAS["conversion.granted/1"] = ConversionGranted


class ConversionRevoked(Strict):
    """``conversion.revoked/1``: a conversion withdrawn (e.g. its source outcome was revoked)."""

    conversion = fields.Integer(required=True, validate=validate.Range(min=0))
    conversion_hash = Hash(required=True)
    reason = fields.String(required=True, validate=TEXT)


PAYLOAD_SCHEMAS["conversion.revoked/1"] = ConversionRevoked
