"""The schema registry client (app/kafka/registry.py) against a fake Confluent API (aiohttp's
test server): schemas fetched once, the two kinds of failure told apart, basic auth, TLS with a
CA file, registering, and loading a batch's schemas into the decoder."""

import asyncio
import base64
import json
import socket
import ssl
import subprocess
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.contracts.avro import AvroDecoder
from app.contracts.records import Malformed
from app.kafka.registry import (
    Credentials,
    RegistryClient,
    RegistryError,
    RegistrySchema,
    RegistryUnavailable,
    SchemaNotFound,
    register_at_start,
)

SCHEMA = json.dumps(
    {"type": "record", "name": "E", "fields": [{"name": "amount", "type": "double"}]}
)
PASSWORD = "Sup3r-s3cret-v4lue"
NOT_FOUND = {"error_code": 40403, "message": "Schema not found"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeRegistry:
    """A Confluent API whose answers a test sets: ``answers[path]`` is a list of (status, body)
    given in turn (the last one again once the list is used up)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, object]]] = {
            "/apis/ccompat/v7/schemas/types": [(200, ["JSON", "PROTOBUF", "AVRO"])]
        }
        self.seen: list[tuple[str, str, str | None, object]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        path = request.rel_url.raw_path  # (as sent: %-escapes kept)
        self.seen.append((request.method, path, request.headers.get("Authorization"), body))
        await self.hold.wait()
        answers = self.answers.get(path, [(404, {"error_code": 404})])
        status, answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer == "echo-auth":  # a registry that echoes the header: scrubbed from errors
            answer = {"message": f"bad {request.headers.get('Authorization')} {PASSWORD}"}
        return web.json_response(answer, status=status)

    def url(self) -> str:
        return str(self.server.make_url("/apis/ccompat/v7"))

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.seen]


@pytest.fixture
async def fake():
    registry = FakeRegistry()
    await registry.server.start_server()
    yield registry
    await registry.server.close()


def client_of(fake: FakeRegistry, **options) -> RegistryClient:
    options.setdefault("clock", Clock())
    return RegistryClient(fake.url(), **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


IDS = "/apis/ccompat/v7/schemas/ids"


async def test_a_schema_is_fetched_once_by_id_with_basic_auth_and_concurrent_askers_share_it(fake):
    fake.answers[f"{IDS}/3"] = [(200, {"schema": SCHEMA})]
    fake.hold.clear()
    async with client_of(fake, auth=Credentials("ml", PASSWORD)) as client:
        asking = [asyncio.ensure_future(client.schema(3)) for _ in range(5)]
        await asyncio.sleep(0)  # (every asker is waiting on the one request)
        fake.hold.set()
        found = await asyncio.gather(*asking)
        again = await client.schema(3)
    assert found == [RegistrySchema(3, SCHEMA, None, ())] * 5 and again == found[0]
    expected_auth = "Basic " + base64.b64encode(f"ml:{PASSWORD}".encode()).decode()
    assert fake.seen == [("GET", f"{IDS}/3", expected_auth, None)]


async def test_an_id_the_registry_does_not_know_is_not_found_then_asked_again_after_the_ttl(fake):
    fake.answers[f"{IDS}/9"] = [(404, NOT_FOUND), (200, {"schema": SCHEMA})]
    clock = Clock()
    async with client_of(fake, clock=clock, not_found_ttl=30.0) as client:
        with pytest.raises(SchemaNotFound) as error:
            await client.schema(9)
        assert error.value.schema_id == 9
        assert str(error.value) == (
            f"schema id 9 is not known to the schema registry at {fake.url()} (HTTP 404, error "
            "code 40403)"
        )
        clock.now += 29.0
        with pytest.raises(SchemaNotFound):
            await client.schema(9)  # taken from the answer just given
        assert fake.paths() == [f"{IDS}/9"]
        clock.now += 1.0
        assert (await client.schema(9)).schema == SCHEMA  # one fresh lookup after the ttl
    assert fake.paths() == [f"{IDS}/9", f"{IDS}/9"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, {"message": "boom"}, "answers GET /schemas/ids/4 with HTTP 500 ("),
        (503, {"message": "down"}, "answers GET /schemas/ids/4 with HTTP 503 ("),
        (429, {"message": "slow down"}, "answers GET /schemas/ids/4 with HTTP 429 ("),
        (
            404,
            {"detail": "Could not find resource"},
            "answers GET /schemas/ids/4 with HTTP 404 without Confluent's error code 40403: is "
            "STREAMLEARN_SCHEMA_REGISTRY_URL the registry's Confluent API",
        ),
        (
            401,
            "echo-auth",
            "answers GET /schemas/ids/4 with HTTP 401: check STREAMLEARN_SCHEMA_REGISTRY_AUTH",
        ),
        (200, {"no": "schema"}, "answers GET /schemas/ids/4 with no schema ("),
    ],
)
async def test_an_answer_that_is_not_a_schema_or_not_found_is_unavailable_never_not_found(
    fake, status, body, expected
):
    fake.answers[f"{IDS}/4"] = [(status, body)]
    async with client_of(fake, auth=Credentials("ml", PASSWORD)) as client:
        with pytest.raises(RegistryUnavailable) as error:
            await client.schema(4)
        with pytest.raises(RegistryUnavailable):
            await client.schema(4)  # not cached: asked again
    text = str(error.value)
    assert text.startswith(f"the schema registry at {fake.url()} {expected}"), text
    assert PASSWORD not in text and base64.b64encode(f"ml:{PASSWORD}".encode()).decode() not in text
    assert "\n" not in text
    assert fake.paths() == [f"{IDS}/4", f"{IDS}/4"]


async def test_a_registry_that_refuses_connections_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    async with RegistryClient(url, Credentials("ml", PASSWORD)) as client:
        with pytest.raises(RegistryUnavailable) as error:
            await client.schema(1)
    text = str(error.value)
    assert text.startswith(f"the schema registry at {url} cannot be reached: ClientConnectorError")
    assert PASSWORD not in text


async def test_a_registry_that_does_not_answer_in_time_is_unavailable(fake):
    fake.hold.clear()  # the request waits for good
    async with client_of(fake, request_timeout=0.2) as client:
        with pytest.raises(RegistryUnavailable) as error:
            await client.schema(1)
    assert str(error.value) == (
        f"the schema registry at {fake.url()} cannot be reached: no answer within 0.2 s"
    )
    fake.hold.set()


async def test_check_passes_for_the_confluent_api_and_says_in_one_line_why_not(fake):
    async with client_of(fake) as client:
        assert await client.check() is None
        fake.answers["/apis/ccompat/v7/schemas/types"] = [(404, {"error_code": 404})]
        fake.answers["/apis/ccompat/v7/subjects"] = [(200, [])]
        assert await client.check() is None  # a registry older than /schemas/types
        fake.answers["/apis/ccompat/v7/schemas/types"] = [(200, ["JSON"])]
        with pytest.raises(RegistryError) as error:
            await client.check()
        assert str(error.value) == f"the schema registry at {fake.url()} serves no Avro (['JSON'])"
        fake.answers["/apis/ccompat/v7/schemas/types"] = [(401, {"message": "who?"})]
        with pytest.raises(RegistryUnavailable, match="HTTP 401: check STREAMLEARN_SCHEMA"):
            await client.check()
    async with RegistryClient(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(RegistryUnavailable, match="cannot be reached") as error:
            await client.check()
    assert "\n" not in str(error.value)


async def test_register_posts_the_schema_under_its_subject_once_and_names_a_refusal(fake):
    versions = "/apis/ccompat/v7/subjects/preds%20v1-value/versions"
    fake.answers[versions] = [(200, {"id": 12}), (409, {"error_code": 409, "message": "no"})]
    async with client_of(fake) as client:
        assert await client.register("preds v1-value", SCHEMA) == 12
        assert await client.register("preds v1-value", SCHEMA) == 12  # asked once
        with pytest.raises(RegistryError) as error:
            await client.register("preds v1-value", SCHEMA.replace("amount", "total"))
    assert str(error.value).startswith(
        f"the schema registry at {fake.url()} refuses the schema for subject 'preds v1-value': "
        "incompatible with its latest version ("
    )
    assert not isinstance(error.value, RegistryUnavailable)
    assert [(m, p, b) for m, p, _, b in fake.seen] == [
        ("POST", versions, {"schema": SCHEMA}),
        ("POST", versions, {"schema": SCHEMA.replace("amount", "total")}),
    ]


async def test_register_at_start_gives_each_subject_s_id_and_a_refusal_is_one_line(fake):
    preds = "/apis/ccompat/v7/subjects/preds-value/versions"
    shadow = "/apis/ccompat/v7/subjects/preds-shadow-value/versions"
    fake.answers[preds] = [(200, {"id": 3})]
    fake.answers[shadow] = [(200, {"id": 4})]
    settings = SimpleNamespace(
        schema_registry_url=fake.url(),
        schema_registry_auth="",
        schema_registry_auth_file="",
        schema_registry_cafile="",
    )
    schemas = {"preds-value": SCHEMA, "preds-shadow-value": SCHEMA}
    # (in a thread of its own, as at start-up; this loop serves the fake meanwhile)
    assert await asyncio.to_thread(register_at_start, settings, schemas) == {
        "preds-value": 3,
        "preds-shadow-value": 4,
    }
    assert [(m, p, b) for m, p, _, b in fake.seen] == [
        ("POST", preds, {"schema": SCHEMA}),
        ("POST", shadow, {"schema": SCHEMA}),
    ]
    fake.answers[shadow] = [(422, {"error_code": 42201, "message": "Invalid schema"})]
    with pytest.raises(RegistryError) as error:
        await asyncio.to_thread(register_at_start, settings, schemas)
    assert str(error.value) == (
        f"the schema registry at {fake.url()} refuses the schema for subject "
        "'preds-shadow-value' as invalid (HTTP 422: "
        '{"error_code": 42201, "message": "Invalid schema"})'
    )


async def test_load_gives_the_decoder_each_missing_schema_and_refuses_unknown_ids(fake):
    fake.answers[f"{IDS}/1"] = [(200, {"schema": SCHEMA})]
    fake.answers[f"{IDS}/2"] = [(404, NOT_FOUND), (200, {"schema": SCHEMA})]
    clock = Clock()
    decoder = AvroDecoder()
    good = b"\x00\x00\x00\x00\x01" + b"\x00" * 7 + b"\x40"  # amount = 2.0
    unknown = b"\x00\x00\x00\x00\x02" + b"\x00" * 7 + b"\x40"
    async with client_of(fake, clock=clock, not_found_ttl=30.0) as client:
        await client.load(decoder, [good, unknown, good, b"not avro", None])
        assert decoder.decode(good) == {"amount": 2.0}
        with pytest.raises(Malformed, match="^schema id 2 is not known to the schema registry"):
            decoder.decode(unknown)
        await client.load(decoder, [unknown])  # refused without asking within the ttl
        assert fake.paths() == [f"{IDS}/1", f"{IDS}/2"]
        clock.now += 30.0
        await client.load(decoder, [unknown])  # then one fresh lookup, which now finds it
        assert decoder.decode(unknown) == {"amount": 2.0}
    assert fake.paths() == [f"{IDS}/1", f"{IDS}/2", f"{IDS}/2"]


async def test_load_retrying_waits_with_backoff_while_unavailable_then_gives_up_with_the_reason(
    fake,
):
    clock = Clock()
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.now += seconds

    fake.answers[f"{IDS}/1"] = [(503, {})] * 3 + [(200, {"schema": SCHEMA})]
    decoder = AvroDecoder()
    message = b"\x00\x00\x00\x00\x01" + b"\x00" * 8
    waits = []
    async with client_of(fake, clock=clock, sleep=sleep) as client:
        await client.load_retrying(decoder, [message], 300.0, lambda e, s: waits.append(s))
        assert decoder.known(1) and pauses == waits == [0.5, 1.0, 2.0]
        fake.answers[f"{IDS}/5"] = [(503, {"message": "down"})]
        pauses.clear()
        with pytest.raises(RegistryUnavailable) as error:
            await client.load_retrying(decoder, [b"\x00\x00\x00\x00\x05\x00"], 12.0)
    assert pauses == [0.5, 1.0, 2.0, 4.0, 4.5]  # doubling, the last cut to the timeout
    assert str(error.value).endswith(
        "; still so after 12 s (STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT=12)"
    )
    assert not decoder.known(5)  # never refused: its messages are not dead-lettered


def make_tls(folder) -> tuple[str, str, str]:
    """A CA and a certificate for 127.0.0.1 signed by it (openssl, as scripts/kafka.sh)."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out",
        "ca.pem", "-days", "1", "-subj", "/CN=test CA", "-addext",
        "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (folder / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-days", "1", "-extfile", "ext", "-out", "cert.pem")  # fmt: skip
    return str(folder / "ca.pem"), str(folder / "cert.pem"), str(folder / "key.pem")


async def test_https_with_the_ca_file_and_refused_without_it(tmp_path):
    ca, cert, key = make_tls(tmp_path)
    registry = FakeRegistry()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    await registry.server.start_server(ssl=server_context)
    registry.answers[f"{IDS}/1"] = [(200, {"schema": SCHEMA})]
    try:
        url = registry.url()
        assert url.startswith("https://127.0.0.1:")
        async with RegistryClient(url, ssl_context=ssl.create_default_context(cafile=ca)) as c:
            assert (await c.schema(1)).schema == SCHEMA
        async with RegistryClient(url) as client:  # the system's CAs do not know this one
            with pytest.raises(RegistryUnavailable, match="cannot be reached: .*certificate"):
                await client.schema(1)
    finally:
        await registry.server.close()
