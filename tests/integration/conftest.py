"""One real Kafka broker per test session, from the project's own script; a schema registry too,
for the tests that ask for one.

If nothing answers on KAFKA_PORT (9092), the session starts a broker with scripts/kafka.sh and
stops it at the end; if it cannot start one, every integration test fails (a skipped integration
test would let a broken pipeline pass CI). The ``registry`` fixture does the same with
scripts/registry.sh on REGISTRY_PORT (8081): Apicurio Registry, in memory, its global
compatibility BACKWARD (as Confluent's registry), started only when a test asks for it.
"""

import os
import socket
import subprocess
import urllib.request

import pytest

from tests.integration.harness import ROOT, Pipeline


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_jars():
    """Kafka's jars in the cache (the broker fixture fetches them; this one for extra clusters)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "kafka.sh"), "fetch"], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"could not fetch Kafka's jars:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def kafka():
    import os

    port = int(os.environ.get("KAFKA_PORT", "9092"))
    started = False
    if not _answers(port):
        result = subprocess.run(
            [str(ROOT / "scripts" / "kafka.sh"), "up", "1"], capture_output=True, text=True
        )
        if result.returncode != 0:
            pytest.fail(f"could not start Kafka:\n{result.stdout}\n{result.stderr}")
        started = True
    yield f"127.0.0.1:{port}"
    if started:
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "down"], check=False)


def _registry_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def registry():
    """The Confluent API's URL of a schema registry on REGISTRY_PORT (8081), started with
    scripts/registry.sh if nothing answers there, and stopped at the end of the session."""
    port = int(os.environ.get("REGISTRY_PORT", "8081"))
    url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    started = False
    if not _answers(port):
        result = subprocess.run(
            [str(ROOT / "scripts" / "registry.sh"), "up"], capture_output=True, text=True
        )
        if result.returncode != 0:
            pytest.fail(f"could not start the schema registry:\n{result.stdout}\n{result.stderr}")
        started = True
    elif not _registry_answers(url):
        pytest.fail(f"port {port} answers, but not as a schema registry at {url}")
    yield url
    if started:
        subprocess.run([str(ROOT / "scripts" / "registry.sh"), "down"], check=False)


#: of a failed test, each worker's first lines at ERROR or above go into its report (CI prints
#: only the report: a worker that crashed would otherwise show as a wait that timed out)
PROBLEM_LINES = 6


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for pipeline in getattr(item, "pipelines", []):
            for worker in pipeline.workers:
                problems = worker_problems(worker)
                if problems:
                    report.sections.append((f"{worker.log_path} (errors)", problems))


def worker_problems(worker) -> str:
    """The first PROBLEM_LINES lines of a worker's log at ERROR or CRITICAL (the first is the
    cause, as a rule), shortened."""
    try:
        lines = worker.log().splitlines()
    except OSError:
        return ""
    found = [line[:400] for line in lines if "] [ERROR] " in line or "] [CRITICAL] " in line]
    return "\n".join(found[:PROBLEM_LINES])


@pytest.fixture
def pipeline_factory(kafka, request):
    made: list[Pipeline] = []
    request.node.pipelines = made  # (read by pytest_runtest_makereport)

    def make(**settings) -> Pipeline:
        name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:30]
        p = Pipeline(name, **settings)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()
