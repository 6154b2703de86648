"""``llmb dash`` and ``llmb demo`` as processes: they serve, bind loopback, and fail in one line."""

import os
import re
import signal
import socket
import subprocess
import sys

import pytest
import requests

from llmb_mlflow.library.reader import RunReader

from conftest import free_port


def start(args, store_uri):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PYTHONUNBUFFERED": "1",
           "BROWSER": "true"}  # "true" as the browser: opening it does nothing
    return subprocess.Popen([sys.executable, "-m", "llmb_mlflow", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on ``port``, from /proc/net/tcp."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def read_url(proc) -> str:
    for line in proc.stdout:
        match = re.search(r"viewer on (http://\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError(proc.stderr.read())


def test_dash_serves_on_loopback_only(store_uri):
    port = free_port()
    proc = start(["dash", "--port", str(port)], store_uri)
    try:
        url = read_url(proc)
        assert url == f"http://127.0.0.1:{port}/"
        page = requests.get(url, timeout=30)
        assert page.status_code == 200 and "LLMBreaker" in page.text
        assert "waitress" in page.headers.get("Server", "").lower() or "llmbreaker" in page.headers.get("Server", "").lower()
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


@pytest.mark.parametrize("how", [["--read-only"], ["LLMB_READ_ONLY=true"]])
def test_dash_can_be_read_only(store_uri, how, monkeypatch):
    if how[0].startswith("LLMB_"):
        monkeypatch.setenv(*how[0].split("="))
    proc = start(["dash", "--port", str(free_port()), *[a for a in how if a.startswith("--")]], store_uri)
    try:
        url = read_url(proc)
        layout = requests.get(url + "_dash-layout", timeout=30).json()
        assert layout["props"]["className"] == "page read-only"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_demo_trains_in_the_background_and_stops_with_the_viewer(store_uri):
    proc = start(["demo", "--port", str(free_port()), "--max-iters", "100000"], store_uri)
    try:
        url = read_url(proc)
        assert requests.get(url, timeout=30).status_code == 200
        [run] = RunReader(store_uri).runs()
        assert run.status == "RUNNING" and run.run_name == "demo"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
    assert RunReader(store_uri).run(run.run_id).status == "KILLED"


@pytest.mark.parametrize("command", ["dash", "demo"])
def test_a_port_in_use_is_one_line(llmb, store_uri, command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = llmb(command, "--port", port)
    assert result.code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert RunReader(store_uri).runs() == []


@pytest.mark.parametrize("command", ["dash", "demo"])
def test_a_store_that_is_down_is_one_line(llmb, command):
    result = llmb(command, "--tracking-uri", "http://127.0.0.1:9")
    assert result.code == 1 and "tracking server http://127.0.0.1:9 is unreachable" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_bad_max_iters_starts_no_demo(llmb, store_uri):
    result = llmb("demo", "--max-iters", "0")
    assert result.code == 1 and result.err == "Error: --max-iters must be between 1 and 1000000000, got 0\n"
    assert RunReader(store_uri).runs() == []
