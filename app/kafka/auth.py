"""How every Kafka client of streamlearn connects: TLS and SASL options from the settings.

Reads: the ``security_protocol``, ``sasl_*`` and ``ssl_*`` settings, and the files they name (the
password file, the CA, the client certificate and key) when a client is made.
Gives: :func:`client_options` for aiokafka's consumers, producers and admin clients (the engine,
the re-key stage, the replay command, topic creation) and :func:`faust_credentials` for Faust's
own clients, so that every client of the project connects the same way.
A password never appears in what this module logs or raises, nor in the settings' ``repr``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SecurityError(ValueError):
    """The security settings cannot be used; the text names the setting, never a secret."""


def check(settings: Any) -> None:
    """Refuse security settings that cannot work, naming the setting (never a secret's value).

    >>> from types import SimpleNamespace as S
    >>> check(S(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u",
    ...         sasl_password="", sasl_password_file="", ssl_cafile="", ssl_certfile="",
    ...         ssl_keyfile=""))
    Traceback (most recent call last):
    ...
    app.kafka.auth.SecurityError: SASL_SSL needs STREAMLEARN_SASL_PASSWORD or ...
    """
    protocol = settings.security_protocol
    if protocol not in PROTOCOLS:
        raise SecurityError(
            f"STREAMLEARN_SECURITY_PROTOCOL={protocol!r}: expected one of {', '.join(PROTOCOLS)}"
        )
    if protocol.startswith("SASL"):
        if settings.sasl_mechanism not in MECHANISMS:
            raise SecurityError(
                f"STREAMLEARN_SASL_MECHANISM={settings.sasl_mechanism!r}: expected one of "
                f"{', '.join(MECHANISMS)}"
            )
        if not settings.sasl_username:
            raise SecurityError(f"STREAMLEARN_SASL_USERNAME is required with {protocol}")
        if settings.sasl_password and settings.sasl_password_file:
            raise SecurityError(
                "STREAMLEARN_SASL_PASSWORD and STREAMLEARN_SASL_PASSWORD_FILE are both set: "
                "set one of them"
            )
        if not settings.sasl_password and not settings.sasl_password_file:
            raise SecurityError(
                f"{protocol} needs STREAMLEARN_SASL_PASSWORD or STREAMLEARN_SASL_PASSWORD_FILE"
            )
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise SecurityError(
            "STREAMLEARN_SSL_CERTFILE and STREAMLEARN_SSL_KEYFILE go together (mutual TLS): "
            "set both or neither"
        )
    if (settings.ssl_cafile or settings.ssl_certfile) and not protocol.endswith("SSL"):
        raise SecurityError(
            f"STREAMLEARN_SSL_* files are set but STREAMLEARN_SECURITY_PROTOCOL={protocol}: "
            "use SSL or SASL_SSL"
        )
    for name in ("sasl_password_file", "ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(settings, name)
        if path and not Path(path).is_file():
            raise SecurityError(f"STREAMLEARN_{name.upper()}={path!r}: no such file")


def password(settings: Any) -> str:
    """The SASL password: the setting, else the first line of the password file."""
    if settings.sasl_password:
        return settings.sasl_password
    try:
        return Path(settings.sasl_password_file).read_text().splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise SecurityError(
            f"STREAMLEARN_SASL_PASSWORD_FILE={settings.sasl_password_file!r} cannot be read "
            f"({type(exc).__name__})"
        ) from None


def ssl_context(settings: Any) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL clients (None for the others): the CA file if given,
    else the system's trusted CAs; the client certificate and key for mutual TLS."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityError(
            f"the TLS files (STREAMLEARN_SSL_CAFILE / _CERTFILE / _KEYFILE) cannot be used: {exc}"
        ) from None
    return context


def client_options(settings: Any) -> dict[str, Any]:
    """Keyword arguments that make an aiokafka client connect as the settings say.

    >>> from types import SimpleNamespace as S
    >>> client_options(S(security_protocol="PLAINTEXT"))
    {'security_protocol': 'PLAINTEXT'}
    """
    protocol = settings.security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = password(settings)
    return options


def faust_credentials(settings: Any) -> Any:
    """Faust's ``broker_credentials`` for the settings (None: PLAINTEXT)."""
    import faust

    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    credentials = faust.SASLCredentials(
        username=settings.sasl_username,
        password=password(settings),
        ssl_context=ssl_context(settings),
        mechanism=settings.sasl_mechanism,
    )
    if protocol == "SASL_PLAINTEXT":
        from faust.types.auth import AuthProtocol

        credentials.protocol = AuthProtocol.SASL_PLAINTEXT
    return credentials


async def preflight(settings: Any, groups: list[str], timeout: float = 10.0) -> str | None:
    """Connect once to the first bootstrap server as the clients will, and look up the
    coordinator of each consumer group in ``groups``: what is wrong, in a sentence that says what
    to check (authentication, TLS, the protocol, the group's ACL), or None.

    Faust's own clients report a refused login as "Unable to bootstrap" and keep the reason in
    their debug log, and a group the principal may not describe makes a Faust worker wait for
    ever without a word; this says both before they start.
    """
    import asyncio

    from aiokafka import AIOKafkaClient
    from aiokafka.conn import create_conn
    from aiokafka.errors import (
        GroupAuthorizationFailedError,
        KafkaConnectionError,
        KafkaError,
        SaslAuthenticationFailed,
    )

    from app.kafka.admin import bootstrap_servers

    server = bootstrap_servers(settings.broker).split(",")[0]
    host, _, port = server.rpartition(":")
    protocol = settings.security_protocol
    try:
        options = client_options(settings)
    except SecurityError as exc:
        return str(exc)
    for attempt in range(2):
        try:
            conn = await asyncio.wait_for(create_conn(host, int(port), **options), timeout)
            break
        except SaslAuthenticationFailed as exc:
            return (
                f"Kafka at {server}: authentication failed for user {settings.sasl_username!r} "
                f"with {settings.sasl_mechanism} ({exc}). Check STREAMLEARN_SASL_USERNAME, the "
                "password (STREAMLEARN_SASL_PASSWORD or _FILE) and STREAMLEARN_SASL_MECHANISM."
            )
        except ssl.SSLError as exc:
            return (
                f"Kafka at {server}: the TLS handshake failed ({exc.reason or exc}). Check "
                "STREAMLEARN_SSL_CAFILE (the CA that signed the broker's certificate), the client "
                "certificate and key for mutual TLS, and that this port speaks TLS."
            )
        except KafkaConnectionError as exc:
            # a TLS port closes a plaintext connection at once; asked twice, to be sure
            if protocol == "PLAINTEXT" and "closed" in str(exc) and attempt == 0:
                await asyncio.sleep(1.0)
                continue
            if protocol == "PLAINTEXT" and "closed" in str(exc):
                return (
                    f"Kafka at {server} (PLAINTEXT): cannot connect: {exc!r}. The broker "
                    "closed the connection: if this port expects TLS or SASL, set "
                    "STREAMLEARN_SECURITY_PROTOCOL (SSL, SASL_PLAINTEXT or SASL_SSL)."
                )
            return None  # not up yet, or unreachable: Faust's clients wait and retry
        except (TimeoutError, OSError):
            return None
    conn.close()
    client = AIOKafkaClient(bootstrap_servers=server, **options)
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        for group in groups:
            try:
                await asyncio.wait_for(client.coordinator_lookup(0, group), timeout)
            except GroupAuthorizationFailedError:
                return (
                    f"Kafka at {server}: the principal may not use the consumer group {group!r} "
                    f"(GroupAuthorizationFailed): grant it READ and DESCRIBE on group {group!r} "
                    "(docs/secured-cluster.md lists every ACL the app needs)."
                )
    except (TimeoutError, KafkaError, OSError):
        pass  # a cluster still starting (no coordinator yet): Faust's clients wait for it
    finally:
        await client.close()
    return None
