"""The base class of every spec section."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    """A spec section: unknown keys are an error that lists the allowed ones."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.model_config.get("extra") == "forbid":
            allowed = sorted(field.alias or name for name, field in cls.model_fields.items())
            for key in data:
                if key not in allowed:
                    hint = difflib.get_close_matches(str(key), allowed, n=1)
                    maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
                    raise ValueError(
                        f"unknown field {key!r}{maybe}; allowed: {', '.join(allowed)}"
                    )
        return data
