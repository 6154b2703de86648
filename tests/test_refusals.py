"""What a stranger probing the viewer gets back: one line naming what they sent, with a status
that says so, at most one line in the server's log and never a traceback; and a refused request
writes nothing. Against a viewer served over HTTP, the viewer inside ``mlflow server``, and
the upload folder's real files."""

import base64
import gzip
import hashlib
import logging
import os

import pytest
import requests

from browser import kill_trainers
from conftest import start_mlflow_server, stop_process
from dash_requests import CallbackPoster
from test_viewer_requests import GOOD_FORM, POEM, SECRET, footprint, refused


STRANGER = {"Authorization": "Basic " + base64.b64encode(b"stranger:stranger-password-2604").decode()}
STYLE_TEXT = "The quick brown fox jumps over the lazy dog by the river bank. " * 8
UNKNOWN_FILES = ["dash/x.js", "nope/x.js", "dash/deps/react@16.v2_0_0m1.js", "dash/dcc/nope.v1m1.js",
                 "dash/dcc/x.map", "plotly/package_data/" + "x" * 300 + ".js"]
BAD_BODIES = {  # what is wrong: (body, headers)
    "gzip": (gzip.compress(b'{"output": "toast.children"}'), {"Content-Encoding": "gzip"}),
    "not JSON": ("{not json", {}),
    "not text": (b"\xff\xfe\x00", {}),
    "not a JSON type": ('{"output": "toast.children"}', {"Content-Type": "text/plain"}),
    "a list": ("[1, 2]", {}),
    "no such callback": ('{"output": "nope.children", "inputs": [], "changedPropIds": []}', {}),
}


def probe(base_url: str, headers: dict | None = None):
    """Each unknown file and each body Dash cannot read, one request at a time, each answered
    in one line with 404 or 400; yields what was asked and the answer, then the caller checks
    the log."""
    for path in UNKNOWN_FILES:
        response = requests.get(f"{base_url}_dash-component-suites/{path}", headers=headers, timeout=30)
        yield path, one_line(response, 404)
    for wrong, (body, extra) in BAD_BODIES.items():
        response = requests.post(base_url + "_dash-update-component", data=body, timeout=30,
                                 headers={"Content-Type": "application/json", **(headers or {}), **extra})
        yield wrong, one_line(response, 400)


def one_line(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("text/plain"), response.headers["Content-Type"]
    assert response.text.startswith("Bad request: ") and response.text.count("\n") == 1, response.text[:300]
    assert len(response.text) < 300, response.text
    return response.text.rstrip("\n")


def test_unknown_files_and_bodies_dash_cannot_read_get_one_line_and_one_log_line(
        viewer, store_uri, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    before = footprint(store_uri, tmp_path)
    answers = {}
    for asked, answer in probe(viewer.base_url):
        answers[asked] = answer
        logged = caplog.records
        assert len(logged) <= 1 and not any(r.exc_info or "\n" in r.getMessage() for r in logged), \
            (asked, [r.getMessage()[:300] for r in logged])
        assert "Traceback" not in caplog.text, asked
        caplog.clear()
    assert answers["dash/x.js"] == "Bad request: the viewer has no file 'dash/x.js'"
    assert answers["nope/x.js"] == "Bad request: the viewer has no file 'nope/x.js'"
    assert answers["gzip"] == "Bad request: the request body is encoded (Content-Encoding: 'gzip'); send plain JSON"
    assert answers["not JSON"].startswith("Bad request: the request body is not JSON (Expecting property name")
    assert answers["not text"].startswith("Bad request: the request body is not JSON (")
    assert answers["not a JSON type"] == "Bad request: the request body must be JSON (Content-Type: 'text/plain')"
    assert answers["a list"] == "Bad request: the request body must be a JSON object (got [1, 2])"
    assert answers["no such callback"] == \
        "Bad request: the viewer could not handle this callback request (output: 'nope.children')"
    assert footprint(store_uri, tmp_path) == before
    assert requests.get(viewer.base_url + "_dash-component-suites/dash/dcc/dash_core_components.v1m1.js",
                        timeout=30).ok  # the page's own files still load


def test_a_malformed_upload_says_so_naming_the_field_and_keeps_nothing(viewer, store_uri, tmp_path):
    before = footprint(store_uri, tmp_path)
    for contents, message in [
            ("x", "the upload is malformed (its contents are not a base64 data: URL; got 'x')"),
            ("aGVsbG8=", "the upload is malformed (its contents are not a base64 data: URL; got 'aGVsbG8=')"),
            ("data:text/plain,hello", "the upload is malformed (its contents are not a base64 data: URL"),
            ("data:text/plain;base64,@@@", "the upload is malformed (the contents of 'a.txt' are not base64)")]:
        answer = viewer.post("upload-payload.data", {"upload-payload.data": {"filename": "a.txt", "contents": contents}})
        refused(answer, "Could not upload: " + message)
        assert answer.set.keys() == {"toast.children", "toast.className"}  # set besides the outputs (set_props)
    assert footprint(store_uri, tmp_path) == before


@pytest.mark.parametrize("field, value, message", [
    ("st-steps.value", -5, "steps must be between 1 and 1000000000, got -5"),
    ("st-steps.value", "many", "steps must be a number (got 'many')"),
    ("st-every.value", 0, "snapshot every must be between 1 and"),
    ("experiment.value", "someone-elses", "no experiment named 'someone-elses' in the store"),
])
def test_a_refused_style_transfer_keeps_no_pasted_text(viewer, store_uri, tmp_path, field, value, message):
    before = footprint(store_uri, tmp_path)
    answer = viewer.post("st-start.n_clicks", {"st-start.n_clicks": 1, "st-text.value": STYLE_TEXT, field: value})
    assert answer.outputs["st-feedback.children"].startswith("Could not start: " + message), answer.text[:300]
    assert not answer.outputs.get("pending-launch.data")
    assert footprint(store_uri, tmp_path) == before


def test_a_pasted_text_written_for_a_start_then_refused_is_forgotten(tmp_path, monkeypatch):
    from llmb_mlflow.launch.uploads import forget_upload, store_upload

    monkeypatch.setenv("LLMB_UPLOAD_DIR", str(tmp_path / "uploads"))
    kept = store_upload("poem.txt", POEM.encode())
    again = store_upload("poem.txt", POEM.encode())
    assert kept.new and not again.new
    forget_upload(again)  # kept before this request: stays
    assert kept.path.read_text() == POEM
    forget_upload(kept)
    assert list((tmp_path / "uploads").rglob("*")) == []


def plant(folder, content: bytes, name: str, how) -> tuple[str, object]:
    """A file named as the viewer names an upload of ``content``, made by ``how(path)``."""
    digest = hashlib.sha256(content).hexdigest()[:16]
    (folder / digest).mkdir(parents=True, exist_ok=True)
    path = folder / digest / name
    how(path)
    return f"upload:{digest}/{name}", path


def test_a_linked_or_special_file_in_the_upload_folder_is_neither_offered_nor_read_by_a_training(
        viewer, store_uri, tmp_path):
    from llmb_mlflow.training.corpus import load_corpus
    from llmb_mlflow.errors import LLMBError
    from llmb_mlflow.launch.uploads import find_upload, store_upload

    uploads = tmp_path / "uploads"
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    stored = store_upload("poem.txt", POEM.encode())
    planted = [plant(uploads, SECRET.encode(), "hard.txt", lambda path: os.link(secret, path)),
               plant(uploads, SECRET.encode(), "soft.txt", lambda path: path.symlink_to(secret)),
               plant(uploads, b"", "fifo.txt", os.mkfifo)]
    kept_link = stored.path.with_name("kept-link.txt")
    os.link(stored.path, kept_link)  # the stored upload itself now has two names
    before = footprint(store_uri, tmp_path)
    try:
        for upload_id, path in [*planted, (stored.id, stored.path)]:
            refused(viewer.post("train-start.n_clicks", {**GOOD_FORM, "train-corpus.value": upload_id,
                                                         "train-start.n_clicks": 1}),
                    "Could not start: no uploaded corpus ", "upload the file again")
            with pytest.raises(LLMBError, match="in the upload folder is not a file the viewer stored as it is now"):
                load_corpus(str(path))  # as the training started with this path reads it
        assert footprint(store_uri, tmp_path) == before
    finally:
        kill_trainers(store_uri)  # one started by mistake
    kept_link.unlink()
    assert find_upload(stored.id) == stored and load_corpus(str(stored.path)).text == POEM


@pytest.fixture(scope="module")
def signed_in_server(template_db, tmp_path_factory):
    """``mlflow server --app-name llmbreaker-auth`` with a user denied the experiment "team",
    which holds a training run; the server's URI, the run's id and its folder."""
    folder = tmp_path_factory.mktemp("signed-in")
    admin = ("admin", "admin-password-2604")
    (folder / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n")  # as docs/deployment.md sets it
    uri, proc = start_mlflow_server(template_db, folder, "--app-name", "llmbreaker-auth", env={
        "MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth.ini"), "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-test-secret",
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin[1], "LLMB_LOG_DIR": str(folder / "logs"),
        "LLMB_UPLOAD_DIR": str(folder / "uploads")})
    try:
        def rest(path, api="/api/2.0/mlflow/", **body):
            response = requests.post(uri + api + path, auth=admin, json=body, timeout=60)
            assert response.ok, response.text
            return response.json()

        rest("users/create", username="stranger", password="stranger-password-2604")
        experiment_id = rest("experiments/create", name="team")["experiment_id"]
        rest("users/permissions/grant", api="/api/3.0/mlflow/", username="stranger", resource_type="experiment",
             resource_id=experiment_id, permission="DENY")
        run_id = rest("runs/create", experiment_id=experiment_id,
                      tags=[{"key": "llmb.kind", "value": "training"}])["run"]["info"]["run_id"]
        yield uri, run_id, folder
    finally:
        stop_process(proc)


def test_a_permission_refusal_while_following_a_run_is_a_refusal_not_an_outage(signed_in_server):
    uri, run_id, _ = signed_in_server
    stranger = CallbackPoster(uri + "/llmb/", headers=STRANGER)
    answer = stranger.post("poll.n_intervals", {"poll.n_intervals": 1, "steps.data": [],
                                                "run-state.data": {"run_id": run_id, "status": "RUNNING"}})
    assert answer.outputs["run-error.children"] == \
        "Cannot follow the run: stranger may not see this run: that needs READ, which stranger does not have"
    assert answer.outputs["poll.disabled"] is True  # asking again would get the same answer
    assert "loss-chart.extendData" not in answer.outputs


def test_the_viewer_behind_mlflows_sign_in_refuses_in_one_line_too(signed_in_server):
    uri, _, folder = signed_in_server
    log = folder / "server.log"
    start = log.stat().st_size
    asked = list(probe(uri + "/llmb/", STRANGER))
    quiet_log(log.read_bytes()[start:].decode(errors="replace"), asked)


def quiet_log(written: str, asked: list) -> None:
    """What a server wrote to its log while ``asked`` were refused: no traceback, and at most a
    line each besides the server's own access lines."""
    assert "Traceback" not in written and "Exception on" not in written, written[-3000:]
    assert len([line for line in written.splitlines() if "HTTP/1.1" not in line]) <= len(asked), written[-3000:]
