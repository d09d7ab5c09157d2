"""Declared input types and the validation of provided values (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DefinitionError, InputValidationError

INPUT_TYPES = ("any", "approval", "choice", "text", "form")
FIELD_TYPES = ("text", "number", "integer", "boolean", "choice")
APPROVAL_VALUES = ("approved", "rejected")


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a form input."""

    name: str
    type: str = "text"
    required: bool = True
    label: str | None = None
    choices: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.label:
            out["label"] = self.label
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


def build_spec(
    input_type: str,
    choices: Sequence[Any] | None,
    fields: Sequence[Field | Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """Check a declaration and return the JSON spec stored with the pending input."""
    if input_type not in INPUT_TYPES:
        raise DefinitionError(
            f"unknown input type {input_type!r}; use one of {', '.join(INPUT_TYPES)}"
        )
    if input_type == "approval":
        return {"choices": list(APPROVAL_VALUES)}
    if input_type == "choice":
        if not choices:
            raise DefinitionError("wait_for_choice needs a non-empty choices=[...]")
        return {"choices": list(choices)}
    if input_type == "form":
        if not fields:
            raise DefinitionError("wait_for_form needs fields=[...]")
        out = []
        for f in fields:
            fld = f if isinstance(f, Field) else Field(**dict(f))
            if fld.type not in FIELD_TYPES:
                raise DefinitionError(
                    f"form field {fld.name!r} has unknown type {fld.type!r}; use one of {', '.join(FIELD_TYPES)}"
                )
            if fld.type == "choice" and not fld.choices:
                raise DefinitionError(f"form field {fld.name!r} of type choice needs choices")
            out.append(fld.to_dict())
        return {"fields": out}
    return {}


def _invalid(message: str) -> InputValidationError:
    """A whole-value error: ``errors`` has the message under ``"value"`` (form inputs
    use their field names)."""
    return InputValidationError(message, {"value": message})


def validate(input_type: str, spec: Mapping[str, Any], value: Any) -> Any:
    """Return the accepted value (normalised) or raise InputValidationError."""
    if input_type == "approval":
        if value is True:
            return "approved"
        if value is False:
            return "rejected"
        if value not in APPROVAL_VALUES:
            raise _invalid(f"an approval must be 'approved' or 'rejected', got {value!r}")
        return value
    if input_type == "choice":
        allowed = list(spec.get("choices", []))
        if value not in allowed:
            raise _invalid(f"{value!r} is not one of the choices {allowed!r}")
        return value
    if input_type == "text":
        if not isinstance(value, str):
            raise _invalid(f"a text input must be a string, got {type(value).__name__}")
        return value
    if input_type == "form":
        return _validate_form(spec.get("fields", []), value)
    return value


def _validate_form(fields: Sequence[Mapping[str, Any]], value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(f"a form input must be an object, got {type(value).__name__}")
    errors: dict[str, str] = {}
    known = {f["name"] for f in fields}
    for extra in sorted(set(value) - known):
        errors[str(extra)] = "unknown field"
    out: dict[str, Any] = {}
    for f in fields:
        name = f["name"]
        if name not in value or value[name] is None or value[name] == "":
            if f.get("required", True):
                errors[name] = "is required"
            continue
        problem = _field_problem(f, value[name])
        if problem:
            errors[name] = problem
        else:
            out[name] = value[name]
    if errors:
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise InputValidationError(f"the form is invalid: {detail}", errors)
    return out


def _field_problem(field: Mapping[str, Any], v: Any) -> str | None:
    kind = field.get("type", "text")
    if kind == "text" and not isinstance(v, str):
        return "must be text"
    if kind == "number" and (isinstance(v, bool) or not isinstance(v, int | float)):
        return "must be a number"
    if kind == "integer" and (isinstance(v, bool) or not isinstance(v, int)):
        return "must be an integer"
    if kind == "boolean" and not isinstance(v, bool):
        return "must be true or false"
    if kind == "choice" and v not in field.get("choices", []):
        return f"must be one of {field.get('choices')!r}"
    return None
