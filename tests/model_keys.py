"""The keys a pydantic model accepts, as dotted paths (`mailbox.host`, `after.event`): what
test_config checks config.example.toml against, and test_docs the documentation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_args, get_origin

from pydantic import BaseModel


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds — itself, in a list, or optional — else None. A table of models
    by name (`[privacy.purposes]`: dict[str, Purpose]) is one key: its names are the admin's."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is dict:
        return None
    for arg in get_args(annotation):
        found = model_of(arg)
        if found is not None:
            return found
    return None


def model_keys(model: type[BaseModel], prefix: str = "", *, parents: bool = False,
               skip: Iterable[str] = ()) -> list[str]:
    """Every key of `model` under `prefix`, in field order, spelled as in the file (a field's
    alias: `from`). A field holding a model gives that model's keys under its own; `parents`
    lists the field itself too (`after`, then `after.event` …). `skip`: top-level fields that
    are no keys (the config's `source`)."""
    keys = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        key = f"{prefix}{field.alias or name}"
        inner = model_of(field.annotation)
        if inner is None or parents:
            keys.append(key)
        if inner is not None:
            keys += model_keys(inner, f"{key}.", parents=parents)
    return keys
