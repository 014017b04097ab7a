"""scripts/kafka.sh refuses, before starting anything, a port its cluster cannot bind, and a
second cluster over the run dir of one running on other ports."""

import socket
import subprocess
import sys

import pytest

from tests.integration.harness import ROOT, own_kafka

pytestmark = pytest.mark.integration

RUN = ROOT / ".cache/kafka/run-port-check"


def test_up_names_a_port_another_process_listens_on():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = own_kafka(port, RUN, "up")
    assert result.returncode == 1
    assert f"port {port} is in use by another process" in result.stderr
    assert "choose another KAFKA_PORT" in result.stderr
    assert not (RUN / "broker-0/pid").exists()


def test_up_names_a_port_held_by_an_outgoing_connection():
    # (a client's end of a connection: nothing answers on it, yet a broker cannot bind it; the
    # controller port KAFKA_PORT+100 is the one held here)
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.connect(server.getsockname())
        held = client.getsockname()[1]
        result = own_kafka(held - 100, RUN, "up")
    assert result.returncode == 1
    assert "is in use by another process" in result.stderr
    assert f"port {held} " in result.stderr or f"port {held - 100} " in result.stderr
    assert not (RUN / "broker-0/pid").exists()


def test_up_is_not_stopped_by_the_closing_connections_of_a_broker_just_stopped():
    # A stopped broker's accepted connections linger (FIN-WAIT-2) on its port while their clients
    # keep them open: the new broker binds it anyway (SO_REUSEADDR), so `up` must not refuse it.
    # Its controller port is taken for real here, so `up` stops there, having passed the first.
    with socket.socket() as old, socket.socket() as client, socket.socket() as taken:
        old.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        old.bind(("127.0.0.1", 0))
        old.listen()
        port = old.getsockname()[1]
        client.connect(("127.0.0.1", port))
        accepted, _ = old.accept()
        accepted.close()
        old.close()
        taken.bind(("127.0.0.1", port + 100))
        taken.listen()
        result = own_kafka(port, RUN, "up")
    assert result.returncode == 1
    assert f"port {port + 100} is in use by another process" in result.stderr


@pytest.mark.parametrize("port", ["70000", "65500", "80", "x"])
def test_up_refuses_a_kafka_port_out_of_range(port):
    result = own_kafka(port, RUN, "up")
    assert result.returncode == 1
    assert "KAFKA_PORT must be a port number from 1024 to 65433" in result.stderr
    assert f"got '{port}'" in result.stderr


def test_a_cluster_running_on_other_ports_is_named_not_taken_for_the_one_asked_for(tmp_path):
    # A cluster of this run dir is "running" (a process the script takes for its broker 0, a
    # socket answering on the port it was started on); `up` and `status` with another
    # KAFKA_PORT must neither say it runs on that port nor start a second one over its data.
    run = tmp_path / "run"
    (run / "broker-0").mkdir(parents=True)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        broker = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)", "broker-0/server.properties"]
        )
        try:
            (run / "broker-0/pid").write_text(f"{broker.pid}\n")
            (run / "brokers").write_text("1\n")
            (run / "port").write_text(f"{port}\n")
            other = port + 1
            up = own_kafka(other, run, "up")
            status = own_kafka(other, run, "status")
        finally:
            broker.kill()
            broker.wait()
    assert up.returncode == 1 and "already running" not in up.stdout
    assert f"a cluster is running from {run} on port {port}, not KAFKA_PORT={other}" in up.stderr
    assert status.returncode == 0
    assert status.stdout.strip() == f"kafka.sh: 1 broker(s) up, bootstrap 127.0.0.1:{port}"
    assert sorted(p.name for p in run.iterdir()) == ["broker-0", "brokers", "port"]
