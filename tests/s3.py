"""A throw-away S3 API on loopback: moto's standalone server (``moto[server]``) with one bucket.

Its fake credentials are handed only to the processes (and the test) that should reach it, never
put in this process's environment for good."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from conftest import stop_process

REGION = "us-east-1"


class S3:
    def __init__(self, port: int, bucket: str = "llmb-artifacts"):
        self.port, self.bucket = port, bucket
        self.endpoint = f"http://127.0.0.1:{port}"
        self.folder = Path(tempfile.mkdtemp(prefix="llmb-s3-"))
        self.proc = None

    @property
    def env(self) -> dict[str, str]:
        """What a client of this S3 needs: MLflow's endpoint variable and boto3's credentials."""
        return {"MLFLOW_S3_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "llmb-test-key",
                "AWS_SECRET_ACCESS_KEY": "llmb-test-secret", "AWS_DEFAULT_REGION": REGION}

    def start(self) -> "S3":
        log = open(self.folder / "moto.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.endpoint + "/moto-api/", timeout=2).ok:
                    break
            except requests.RequestException:  # not listening yet
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("moto's S3 server did not start:\n" + (self.folder / "moto.log").read_text()[-3000:])
            time.sleep(0.2)  # polling its API
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self):
        import boto3

        env = self.env
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` in the bucket."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        try:
            if self.proc is not None:
                stop_process(self.proc)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
