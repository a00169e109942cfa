"""Kafka security settings reach every client the platform builds; the local default stays PLAINTEXT."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.security import SASLScram512

from services.platform.kafka import BatchConsumer, kafka_broker_security, kafka_client_options, make_producer
from services.platform.observability import make_kafka_broker
from services.platform.settings import KafkaClientSettings

SECURITY_ENV = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECURITY_ENV:
        monkeypatch.delenv(name, raising=False)


def _scram_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "wijkmatch-intake")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret-from-the-kafkauser-secret")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wijkmatch-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "user.crt", tmp_path / "user.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_the_local_default_is_plaintext_without_credentials():
    assert kafka_client_options() == {}
    assert kafka_broker_security() is None
    assert KafkaClientSettings().kafka_security_protocol == "PLAINTEXT"


async def test_plaintext_producer_and_consumer_are_unchanged():
    producer = make_producer("127.0.0.1:1")
    consumer = BatchConsumer("127.0.0.1:1", ["t"], "g")
    assert producer.client._security_protocol == "PLAINTEXT"
    assert consumer.consumer._client._security_protocol == "PLAINTEXT"


async def test_sasl_scram_over_tls_reaches_producer_consumer_and_admin_options(monkeypatch):
    _scram_env(monkeypatch)
    producer = make_producer("kafka:9093")
    consumer = BatchConsumer("kafka:9093", ["t"], "g")
    for client in (producer.client, consumer.consumer._client):
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "wijkmatch-intake"
        assert client._sasl_plain_password == "s3cret-from-the-kafkauser-secret"
        assert isinstance(client._ssl_context, ssl.SSLContext)
        assert client._ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_the_faststream_broker_gets_the_same_security(monkeypatch):
    _scram_env(monkeypatch)
    security = kafka_broker_security()
    assert isinstance(security, SASLScram512) and security.use_ssl
    broker = make_kafka_broker("kafka:9093", "wijkmatch-test")
    built = broker.config.configs[0].builder.keywords
    assert built["security_protocol"] == "SASL_SSL"
    assert built["sasl_mechanism"] == "SCRAM-SHA-512"
    assert built["sasl_plain_username"] == "wijkmatch-intake"


def test_mutual_tls_loads_the_client_certificate_and_the_ca(monkeypatch, tmp_path):
    cert_file, key_file = _self_signed(tmp_path)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(cert_file))
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(cert_file))
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(key_file))
    options = kafka_client_options()
    assert options["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in options
    assert options["ssl_context"].cert_store_stats()["x509_ca"] == 1
    security = kafka_broker_security()
    assert security is not None and security.use_ssl and security.ssl_context is not None


def test_sasl_without_credentials_is_refused(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "wijkmatch-intake")
    with pytest.raises(ValueError, match="KAFKA_SASL_PASSWORD"):
        kafka_client_options()


def test_a_bad_setting_never_echoes_the_password(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_TLS")  # not a protocol
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "do-not-print-me")
    with pytest.raises(ValueError) as failure:
        KafkaClientSettings()
    assert "do-not-print-me" not in str(failure.value)
    assert "SASL_TLS" not in str(failure.value)


KAFKA_CLIENTS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "KafkaBroker"}
# Kafka clients a service builds itself without the security settings (none: every service builds its
# clients through services/platform/kafka.py and observability.make_kafka_broker). The test fails for any
# new client that ignores the settings.
KNOWN_UNSECURED: set[str] = set()


def _client_calls_without_security() -> set[str]:
    import ast

    root = Path(__file__).resolve().parents[3]
    found = set()
    for path in sorted((root / "services").rglob("*.py")):
        if path.relative_to(root).parts[1] == "platform":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in KAFKA_CLIENTS:
                continue
            secured = any(
                (
                    k.arg is None
                    and isinstance(k.value, ast.Call)
                    and getattr(k.value.func, "id", "") == "kafka_client_options"
                )
                or k.arg == "security"
                for k in node.keywords
            )
            if not secured:
                found.add(f"{path.relative_to(root)}:{name}")
    return found


def test_every_kafka_client_a_service_builds_itself_uses_the_security_settings():
    assert _client_calls_without_security() == KNOWN_UNSECURED


def _issue(
    name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, san: str | None = None
):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write_pem(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


async def test_a_producer_presents_its_kafkauser_certificate_and_checks_the_broker(monkeypatch, tmp_path):
    """A real TLS handshake on loopback: the broker side requires a client certificate signed by the CA
    (as Strimzi's `authentication: tls` listener does); the producer verifies the broker's certificate and
    host name against KAFKA_SSL_CAFILE and presents KAFKA_SSL_CERTFILE / KAFKA_SSL_KEYFILE."""
    import asyncio

    ca = _issue("wijkmatch-test-ca", None)
    broker_cert, broker_key = _issue("broker", ca, san="localhost")
    client_cert, client_key = _issue("wijkmatch-intake", ca)
    _write_pem(tmp_path / "ca.crt", ca[0])
    _write_pem(tmp_path / "broker.crt", broker_cert, broker_key)
    _write_pem(tmp_path / "user.crt", client_cert, client_key)

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    server_context.load_cert_chain(tmp_path / "broker.crt", tmp_path / "broker.key")
    server_context.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []
    handshake = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        seen.extend(value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName")
        handshake.set()
        writer.close()  # not a Kafka broker: the client's request fails after the handshake

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(tmp_path / "user.crt"))
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(tmp_path / "user.key"))
    producer = make_producer(f"localhost:{port}", request_timeout_ms=2000, retry_backoff_ms=50)
    start = asyncio.create_task(producer.start())
    try:
        await asyncio.wait_for(handshake.wait(), 20)
    finally:
        start.cancel()
        with contextlib.suppress(BaseException):
            await start
        with contextlib.suppress(BaseException):
            await producer.stop()
        server.close()
        await server.wait_closed()
    assert seen == ["wijkmatch-intake"]


async def test_a_broker_certificate_from_another_ca_is_refused(monkeypatch, tmp_path):
    import asyncio

    ca, other_ca = _issue("wijkmatch-test-ca", None), _issue("someone-else", None)
    broker_cert, broker_key = _issue("broker", other_ca, san="localhost")
    _write_pem(tmp_path / "ca.crt", ca[0])
    _write_pem(tmp_path / "broker.crt", broker_cert, broker_key)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "broker.crt", tmp_path / "broker.key")
    handshakes: list[bool] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handshakes.append(True)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(tmp_path / "ca.crt"))
    producer = make_producer(f"localhost:{port}", request_timeout_ms=2000, retry_backoff_ms=50)
    try:
        with pytest.raises(Exception):  # noqa: B017 - aiokafka wraps the certificate error in its own
            await asyncio.wait_for(producer.start(), 20)
    finally:
        with contextlib.suppress(BaseException):
            await producer.stop()
        server.close()
        await server.wait_closed()
    assert handshakes == []  # the client gave up during the handshake: no connection was accepted
