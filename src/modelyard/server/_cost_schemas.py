"""Bodies of the cost API. Reports travel as the service's JSON (what ``--json`` prints);
values are checked by :class:`~modelyard.cost.service.CostService`, shapes here (both a
400 naming the field)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelyard.server._schemas import Input


class TagsIn(Input):
    """Tags to set (``{"team": "risk"}``) and keys to remove."""

    set: dict[str, str] = Field(default_factory=dict, max_length=50)
    unset: list[str] = Field(default_factory=list, max_length=50)


class TagsOut(BaseModel):
    """The tags of a project (``deployment`` None) or of one of its deployments, after
    the change."""

    project: str
    deployment: str | None
    tags: dict[str, str]
