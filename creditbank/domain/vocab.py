"""The credit bank's fixed vocabulary, with the Chinese policy terms each code stands for."""

from __future__ import annotations

OUTCOME_KINDS = ("course", "diploma", "certificate", "training", "award", "innovation", "other")
"""课程学分, 学历证书, 职业技能等级证书, 培训证书, 竞赛获奖, 创新创业, 其他学习成果."""

ISSUER_KINDS = ("authority", "school", "training_org")
"""学分银行管理机构, 职业院校, 培训评价组织."""

SCHOOL_LEVELS = ("secondary_vocational", "higher_vocational", "undergraduate")
SCHOOL_LEVEL_ALIASES = {
    "中职": "secondary_vocational",
    "高职": "higher_vocational",
    "高职专科": "higher_vocational",
    "本科": "undergraduate",
}

CERTIFICATE_LEVELS = ("junior", "intermediate", "senior")
"""初级 < 中级 < 高级, in this order."""
CERTIFICATE_LEVEL_ALIASES = {"初级": "junior", "中级": "intermediate", "高级": "senior"}

AWARD_LEVELS = ("school", "municipal", "provincial", "national", "international")
AWARD_LEVEL_ALIASES = {
    "校级": "school",
    "市级": "municipal",
    "省级": "provincial",
    "国家级": "national",
    "国际级": "international",
}

EXAM_MODULES = ("theory", "practical")
"""理论, 实操: the parts of a certificate exam that may be passed or exempted (免试)."""

SUSPENSION_REASONS = ("innovation_entrepreneurship", "military_service", "health", "other")
"""保留学籍休学创新创业, 服兵役, 病休, 其他."""

ACCOUNT_STATUSES = ("open", "enrolled", "suspended", "graduated", "withdrawn")

QUOTA_PERIODS = ("month", "year")


def certificate_rank(level: str) -> int:
    """Order of a certificate level: junior 0 < intermediate 1 < senior 2."""
    return CERTIFICATE_LEVELS.index(level)
