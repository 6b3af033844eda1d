"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, login, several
recipients, plain text and HTML (with inline pictures), a stable
``Message-ID`` per alert and ``In-Reply-To``/``References`` for follow-ups.
Headers are UTF-8 (RFC 2047), so a name in any script arrives intact."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from alerts.errors import ChannelError, ChannelRefused
from alerts.message import Message
from alerts.settings import EmailChannel, secret


def email_of(message: Message, sender: str, recipients: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = format_datetime(datetime.now(UTC))
    if message.message_id:
        mail["Message-ID"] = message.message_id
    if message.in_reply_to:
        mail["In-Reply-To"] = message.in_reply_to
    if message.references:
        mail["References"] = " ".join(message.references)
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    html_part = mail.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    for cid, png in message.images.items():
        html_part.add_related(png, "image", "png", cid=f"<{cid}>", filename=f"{cid}.png")
    return mail


class SmtpChannel:
    def __init__(self, config: EmailChannel) -> None:
        self.name = config.name
        self.config = config
        self.password = secret(config.password_env, f"alerts.channels.{config.name}.password_env")
        self.tls_context: ssl.SSLContext | None = None
        if config.security != "none":
            self.tls_context = ssl.create_default_context(
                cafile=None if config.ca_file is None else str(config.ca_file)
            )

    async def send(self, message: Message) -> str | None:
        c = self.config
        mail = email_of(message, c.sender, c.recipients)
        try:
            errors, response = await aiosmtplib.send(
                mail, hostname=c.host, port=c.port, username=c.username, password=self.password,
                use_tls=c.security == "tls", start_tls=c.security == "starttls",
                tls_context=self.tls_context, timeout=c.timeout_s, recipients=c.recipients, sender=c.sender,
            )  # fmt: skip
        except aiosmtplib.SMTPAuthenticationError as exc:  # a password fixed later: keep trying
            raise ChannelError(f"{c.host}:{c.port}: login refused: {exc}", channel=self.name) from exc
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as exc:
            raise ChannelRefused(f"{c.host}:{c.port}: {exc}", channel=self.name) from exc
        except aiosmtplib.SMTPResponseException as exc:
            error = ChannelRefused if 500 <= exc.code < 600 else ChannelError
            raise error(f"{c.host}:{c.port}: {exc.code} {exc.message}", channel=self.name) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"{c.host}:{c.port}: {type(exc).__name__}: {exc}", channel=self.name) from exc
        if errors and len(errors) == len(c.recipients):
            raise ChannelRefused(f"{c.host}:{c.port}: every recipient refused: {errors}", channel=self.name)
        return response
