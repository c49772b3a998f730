"""TLS to the broker: one client context per process, for every MQTT client it opens.

`mqtts://` verifies the broker's certificate and host name against
`IOTLEDGER_MQTT_CA_FILE`, or the system's store when it is unset; a client certificate
(`IOTLEDGER_MQTT_CERT_FILE`, its key in `IOTLEDGER_MQTT_KEY_FILE` or in the same file)
is presented when given. The context is built once at start-up, so a CA or a
certificate that cannot be loaded stops start-up with one line naming its setting.
"""

from __future__ import annotations

import ssl

from iotledger.settings import MqttUrl, Settings, SettingsError


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The client context for the configured `mqtts://` broker; None without TLS."""
    url = settings.mqtt_url
    if url is None or not url.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=settings.mqtt_ca_file)
    except (OSError, ssl.SSLError) as e:
        raise SettingsError(f"IOTLEDGER_MQTT_CA_FILE: cannot load the CA ({e})") from None
    if settings.mqtt_cert_file is not None:
        try:
            context.load_cert_chain(settings.mqtt_cert_file, settings.mqtt_key_file)
        except (OSError, ssl.SSLError) as e:
            raise SettingsError(
                f"IOTLEDGER_MQTT_CERT_FILE: cannot load the client certificate and key ({e})"
            ) from None
    return context


def ssl_option(url: MqttUrl, context: ssl.SSLContext | None) -> ssl.SSLContext | bool:
    """What gmqtt's `connect` takes as `ssl`: a context for `mqtts://` (the system
    store's when none is given), False for plain `mqtt://`."""
    if not url.tls:
        return False
    return context or ssl.create_default_context()


def is_tls_failure(error: BaseException) -> bool:
    """Whether a failed connect failed in the TLS handshake (a certificate, a protocol)."""
    return isinstance(error, ssl.SSLError)
