"""Posting callback requests to a served viewer the way a script can, without a browser: any
value for any input or state of any of its callbacks."""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests


@dataclass
class Answer:
    status: int
    outputs: dict  # "id.property" -> value, for the outputs the callback updated and the props it set
    text: str
    set: dict  # "id.property" -> value, for the props the callback set besides its outputs (``set_props``)


class CallbackPoster:
    def __init__(self, base_url: str, headers: dict | None = None):
        self.base_url = base_url.rstrip("/") + "/"
        self.headers = headers or {}
        response = requests.get(self.base_url + "_dash-dependencies", timeout=30, headers=self.headers)
        response.raise_for_status()
        self.callbacks = response.json()

    def post(self, trigger: str, values: dict | None = None, headers: dict | None = None,
             output: str | None = None) -> Answer:
        """Fire the callback with input ``trigger`` ("id.property"; for a pattern-matching
        input, the JSON of its id and the property, as Dash writes it) whose output names
        ``output`` if given. ``values``: "id.property" -> value for any input or state, others
        are None; a pattern-matching one takes a list of (id dict, value) pairs, keyed by its
        id's "type" and the property."""
        values = values or {}
        callback = self._find(trigger, output)
        body = {"output": callback["output"], "outputs": _outputs(callback["output"], values),
                "inputs": [_entry(spec, values) for spec in callback["inputs"]],
                "state": [_entry(spec, values) for spec in callback["state"]],
                "changedPropIds": [trigger]}
        return self.post_body(body, headers)

    def post_body(self, body, headers: dict | None = None) -> Answer:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        response = requests.post(self.base_url + "_dash-update-component", data=data, timeout=120,
                                 headers={"Content-Type": "application/json", **self.headers, **(headers or {})})
        answer = response.json() if response.status_code == 200 else {}
        set_ = _props(answer.get("sideUpdate", {}))
        # what the callback set besides its outputs first, as the page applies it
        return Answer(response.status_code, {**set_, **_props(answer.get("response", {}))}, response.text, set_)

    def _find(self, trigger: str, output: str | None) -> dict:
        element, _, prop = trigger.rpartition(".")
        for callback in self.callbacks:
            if callback.get("clientside_function") or (output and output not in callback["output"]):
                continue
            for spec in callback["inputs"]:
                if spec["property"] == prop and _same_id(spec["id"], element):
                    return callback
        raise AssertionError(f"no callback has the input {trigger}")


def _props(part: dict) -> dict:
    """A part of Dash's answer (its outputs or what it set) as "id.property" -> value."""
    return {f"{element}.{prop}": value for element, props in part.items() for prop, value in props.items()}


def _same_id(spec_id: str, element: str) -> bool:
    if spec_id == element:
        return True
    if not (spec_id.startswith("{") and element.startswith("{")):
        return False
    pattern, wanted = json.loads(spec_id), json.loads(element)
    return pattern.get("type") == wanted.get("type") and set(pattern) == set(wanted)


def _outputs(output: str, values: dict):
    """The outputs as the page names them; a pattern-matching one's components are those of
    ``values`` (as for an input) that its pattern matches."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    found = []
    for part in parts:
        spec = dict(zip(("id", "property"), part.rsplit(".", 1)))
        found.append([{"id": entry["id"], "property": spec["property"]} for entry in _matching(spec, values)]
                     if spec["id"].startswith("{") else spec)
    return found if output.startswith("..") else found[0]


def _entry(spec: dict, values: dict):
    if spec["id"].startswith("{"):
        return _matching(spec, values)
    return {"id": spec["id"], "property": spec["property"],
            "value": values.get(f"{spec['id']}.{spec['property']}")}


def _matching(spec: dict, values: dict) -> list[dict]:
    """The pattern-matching entries of ``values`` under the pattern's type and property whose
    id has the pattern's keys and agrees on every key the pattern does not leave open."""
    pattern = json.loads(spec["id"])
    fixed = {key: value for key, value in pattern.items() if not isinstance(value, list)}
    return [{"id": id_, "property": spec["property"], "value": value}
            for id_, value in values.get(f"{pattern['type']}.{spec['property']}", [])
            if set(id_) == set(pattern) and all(id_[key] == value for key, value in fixed.items())]


def pattern_trigger(id_: dict, prop: str) -> str:
    """A pattern-matching component's input as Dash names it: its id's JSON, keys sorted."""
    return json.dumps(id_, sort_keys=True, separators=(",", ":")) + "." + prop
