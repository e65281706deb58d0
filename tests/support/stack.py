"""What the end-to-end and fault tests do with the real processes that `benchmarks/launch.py` starts:
act as a dispatcher (asserting that each step worked), read the database, stop Redis."""
import re
import socket
import subprocess

import httpx

from benchmarks import launch
from benchmarks.launch import free_port, wait_until
from benchmarks.traffic import csrf_token


class RedisServer:
    """A Redis of the test's own, so that a test may stop it without disturbing anything else."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path / "redis"
        self.dir.mkdir(exist_ok=True)
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, message="redis did not start")

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class Stack(launch.Stack):
    """The launcher's processes, driven as a dispatcher would and read back from their database."""

    # --- as a dispatcher would -------------------------------------------------------------
    def sign_in(self):
        client = httpx.Client(base_url=self.base_url, timeout=30)
        token = csrf_token(client.get("/login/").text)
        response = client.post("/login/", data={"username": "e2e", "password": self.password_file.read_text().strip(),
                                                "csrfmiddlewaretoken": token, "next": "/dispatch/"})
        assert response.status_code == 302, response.text[:500]
        return client

    @staticmethod
    def submit(client, text, location=""):
        token = csrf_token(client.get("/").text)
        response = client.post("/", data={"text": text, "location": location, "csrfmiddlewaretoken": token})
        assert response.status_code == 302, response.text[:500]
        return int(re.search(r"/requests/(\d+)/", response.headers["location"]).group(1))

    # --- reading the database directly (full stack) ----------------------------------------
    def query(self, sql, *params):
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as connection:
            return connection.execute(sql, params).fetchall()

    def statuses(self):
        return dict(self.query("SELECT status, count(*) FROM intake_medicalrequest GROUP BY status"))
