"""The pipeline against a secured broker from scripts/kafka.sh (KAFKA_SECURITY=sasl_ssl): SASL_SSL
with SCRAM-SHA-512, mutual TLS, ACLs. The tests' own clients connect as the super user `admin`
(or, on the mutual TLS port, with the client certificate); workers as the app's principal."""

import os
import signal
import ssl
import subprocess
import time
import urllib.request

import orjson
import pytest
from river import datasets

from app.models.spec import parse_spec
from tests.integration.harness import (
    ARTIFACTS,
    CLIENT_OPTIONS,
    ROOT,
    Pipeline,
    env_settings,
    wait_for,
)
from tests.integration.reference import assert_worker_equals, with_delayed_labels

pytestmark = pytest.mark.integration

LR = parse_spec("StandardScaler | LogisticRegression")
PORT = int(os.environ.get("KAFKA_SECURED_PORT", "19392"))
RUN = ARTIFACTS / "kafka-secured"


def script_env() -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_PORT": str(PORT),
        "KAFKA_RUN": str(RUN),
        "KAFKA_SECURITY": "sasl_ssl",
        "KAFKA_ACL_PREFIX": "it-",  # every test pipeline's id and topics start with it
        "KAFKA_START_TIMEOUT": "120",
    }


class Secured:
    def __init__(self) -> None:
        security = RUN / "security"
        self.sasl = f"127.0.0.1:{PORT}"
        self.mtls = f"127.0.0.1:{PORT + 50}"
        self.client = {k: v for k, v in env_settings(RUN / "client.env").items() if k != "broker"}
        self.client_mtls = {
            k: v for k, v in env_settings(RUN / "client-mtls.env").items() if k != "broker"
        }
        self.password = (security / "streamlearn.password").read_text().strip()
        context = ssl.create_default_context(cafile=str(security / "ca.pem"))
        CLIENT_OPTIONS[self.sasl] = {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "admin",
            "sasl_plain_password": (security / "admin.password").read_text().strip(),
            "ssl_context": context,
        }
        mtls_context = ssl.create_default_context(cafile=str(security / "ca.pem"))
        mtls_context.load_cert_chain(security / "client.pem", security / "client-key.pem")
        CLIENT_OPTIONS[self.mtls] = {"security_protocol": "SSL", "ssl_context": mtls_context}

    def grant(self, principal: str, *args: str, allow: bool = True) -> None:
        """Add an ACL (``allow`` or deny) with Kafka's own AclCommand, as admin."""
        lib = ROOT / ".cache" / "kafka" / "lib"
        result = subprocess.run(
            [
                "java",
                "-cp",
                f"{lib}/*",
                "kafka.admin.AclCommand",
                "--bootstrap-server",
                self.sasl,
                "--command-config",
                str(RUN / "security" / "admin.properties"),
                "--add",
                "--allow-principal" if allow else "--deny-principal",
                f"User:{principal}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def secured(kafka_jars):
    script = str(ROOT / "scripts" / "kafka.sh")
    result = subprocess.run([script, "up"], env=script_env(), capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"could not start the secured broker:\n{result.stdout}\n{result.stderr}")
    yield Secured()
    subprocess.run([script, "down"], env=script_env(), check=False)


@pytest.fixture
def secured_pipeline(secured, request):
    made: list[Pipeline] = []

    def make(bootstrap: str, security: dict, **settings) -> Pipeline:
        name = request.node.name.replace("_", "-")[:30]
        pipeline = Pipeline(name, bootstrap=bootstrap, **security, **settings)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.stop()


def phishing(start: int, stop: int, labelled: bool = True) -> list[tuple[dict, bytes]]:
    out = []
    for i, (x, y) in enumerate(list(datasets.Phishing())[start:stop]):
        event = {"id": f"e{start + i}", "key": None, "ts": 1000.0 + start + i, "x": x}
        if labelled:
            event["y"] = y
        out.append(((orjson.loads(orjson.dumps(x)), y), orjson.dumps(event)))
    return out


def as_intruder(secured: Secured) -> dict:
    """The security settings of ``intruder``: a valid user with no ACL but those a test adds."""
    return {
        **secured.client,
        "sasl_username": "intruder",
        "sasl_password_file": str(RUN / "security" / "intruder.password"),
    }


def total(worker, field: str) -> int:
    return sum(e[field] for e in worker.models())


def test_sasl_ssl_pipeline_with_delayed_labels_equals_river_offline(
    secured, secured_pipeline, tmp_path
):
    pipeline = secured_pipeline(secured.sasl, secured.client, partitions=1, model=LR.text)
    worker = pipeline.start_worker()
    inline, delayed = phishing(0, 200), phishing(200, 300, labelled=False)
    pipeline.send(pipeline.events, [raw for _, raw in inline + delayed])
    wait_for(lambda: total(worker, "n_predicted") == 300, what="300 predicted")
    labels = [
        orjson.dumps({"id": f"e{200 + i}", "y": y, "ts": 1400.0})
        for i, ((_, y), _) in enumerate(delayed)
    ]
    pipeline.send(pipeline.labels, labels)
    wait_for(lambda: total(worker, "n_learned") == 300, what="300 learned")
    # River offline: test-then-train on the first 200; the last 100 predicted by that model
    # when they arrived, then scored and learned in the order of their labels
    model, metric = with_delayed_labels(LR, [row for row, _ in inline], [r for r, _ in delayed])
    assert_worker_equals(pipeline, worker, LR, model, metric, 300)
    assert len(pipeline.read(pipeline.predictions, 300)) == 300
    assert secured.password not in worker.log()
    for page in ("/", "/stats/", "/metrics", "/models/", "/dashboard/"):
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}{page}", timeout=5) as r:
            assert secured.password.encode() not in r.read(), page
    # the offline features command reads the topic over the same secured connection
    out = tmp_path / "features.jsonl"
    done = pipeline.command("features", f"kafka:{pipeline.events}", "--out", str(out), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in rows] == [f"e{i}" for i in range(300)]
    assert secured.password not in done.stdout + done.stderr


def test_sasl_ssl_kill_and_restart_restores_the_checkpoint(secured, secured_pipeline):
    pipeline = secured_pipeline(secured.sasl, secured.client, partitions=1, model=LR.text)
    worker = pipeline.start_worker()
    pipeline.send(pipeline.events, [raw for _, raw in phishing(0, 200)])
    wait_for(lambda: total(worker, "n_learned") == 200, what="200 learned")
    wait_for(lambda: worker.stats().get("checkpoint_age_s"), what="a checkpoint")
    worker.stop(signal.SIGKILL)
    worker.start()
    wait_for(lambda: worker.stats().get("checkpoints_restored") == 1, what="restored")
    pipeline.send(pipeline.events, [raw for _, raw in phishing(200, 210)])
    wait_for(lambda: total(worker, "n_learned") == 210, what="210 learned")
    assert total(worker, "n_predicted") == 210  # nothing learned twice


def test_mutual_tls_connects_and_learns(secured, secured_pipeline):
    pipeline = secured_pipeline(secured.mtls, secured.client_mtls, partitions=1, model=LR.text)
    worker = pipeline.start_worker()
    pipeline.send(pipeline.events, [raw for _, raw in phishing(0, 50)])
    wait_for(lambda: total(worker, "n_learned") == 50, what="50 learned over mutual TLS")


def exits(pipeline: Pipeline, timeout: float) -> tuple[int, float, str]:
    """Start a worker that must stop by itself: its exit code, seconds, log."""
    from tests.integration.harness import Worker

    worker = Worker(pipeline, 0)
    pipeline.workers.append(worker)
    started = time.monotonic()
    worker.spawn()
    rc = worker.process.wait(timeout=timeout)
    return rc, time.monotonic() - started, worker.log()


def last_line(log: str) -> str:
    return log.strip().splitlines()[-1]


def test_a_wrong_password_stops_the_worker_within_30_s_saying_authentication_failed(
    secured, secured_pipeline
):
    security = {**secured.client, "sasl_password_file": "", "sasl_password": "not-the-password"}
    pipeline = secured_pipeline(secured.sasl, security, partitions=1, model=LR.text)
    rc, seconds, log = exits(pipeline, timeout=60)
    assert rc == 2 and seconds < 30  # a start-up error: one line, no traceback
    assert last_line(log).startswith(
        f"streamlearn: Kafka at {secured.sasl}: authentication failed for user 'streamlearn' "
        "with SCRAM-SHA-512"
    )
    assert "Traceback" not in log
    assert "not-the-password" not in log


def test_a_principal_without_an_acl_gets_an_error_naming_the_resource(secured, secured_pipeline):
    pipeline = secured_pipeline(secured.sasl, as_intruder(secured), partitions=1, model=LR.text)
    # its consumer group, but not one of its topics
    secured.grant(
        "intruder",
        *("--resource-pattern-type", "prefixed", "--group", pipeline.id),
        *("--operation", "Read", "--operation", "Describe"),
    )
    rc, seconds, log = exits(pipeline, timeout=90)
    assert rc != 0 and seconds < 30
    assert "TopicAuthorizationFailedError" in log
    assert f"Cannot create topic: {pipeline.id}-__assignor-__leader" in log


def test_a_principal_without_its_group_acl_stops_instead_of_hanging(secured, secured_pipeline):
    pipeline = secured_pipeline(secured.sasl, as_intruder(secured), partitions=1, model=LR.text)
    # every topic of this pipeline (its id is their prefix), but not its consumer group
    secured.grant(
        "intruder",
        "--resource-pattern-type",
        "prefixed",
        "--topic",
        pipeline.id,
        *("--operation", "All"),
    )
    rc, seconds, log = exits(pipeline, timeout=120)
    assert rc == 2 and seconds < 30
    assert f"the principal may not use the consumer group {pipeline.id!r}" in last_line(log)
    assert "Traceback" not in log


def test_a_plaintext_client_on_the_tls_port_gets_a_clear_error(secured, secured_pipeline):
    pipeline = secured_pipeline(secured.sasl, {}, partitions=1, model=LR.text)
    rc, seconds, log = exits(pipeline, timeout=60)
    assert rc == 2 and seconds < 30
    assert last_line(log).startswith(f"streamlearn: Kafka at {secured.sasl} (PLAINTEXT): cannot")
    assert "set STREAMLEARN_SECURITY_PROTOCOL" in last_line(log)
    assert "Traceback" not in log


def test_a_changelog_write_kafka_refuses_stops_the_worker_naming_the_topic(
    secured, secured_pipeline
):
    pipeline = secured_pipeline(secured.sasl, as_intruder(secured), partitions=1, model=LR.text)
    changelog = f"{pipeline.id}-pending-by-id-changelog"
    prefixed = ("--resource-pattern-type", "prefixed")
    secured.grant("intruder", *prefixed, "--topic", pipeline.id, "--operation", "All")
    secured.grant("intruder", *prefixed, "--group", pipeline.id, "--operation", "All")
    secured.grant("intruder", "--topic", changelog, "--operation", "Write", allow=False)
    worker = pipeline.start_worker()
    # an event without its label: its features wait in the join, a table whose changelog
    # Kafka refuses to take
    pipeline.send(pipeline.events, [raw for _, raw in phishing(0, 1, labelled=False)])
    assert worker.process.wait(timeout=120) != 0
    log = worker.log()
    assert f"Kafka refused a write to topic {changelog!r}" in log
    assert "TopicAuthorizationFailedError" in log
