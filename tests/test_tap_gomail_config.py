# -*- test-case-name: tests.test_tap_gomail_config -*-
"""
Tests for L{gomail_twisted.tap._config}: the TOML file and the command
line of C{twistd gomail}, tables of valid and invalid values, each error
one line naming the key.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import generatePrivateKey
from gomail_twisted.tap._config import (
    DEFAULT_LISTEN,
    SERVICES,
    ConfigError,
    GomailConfig,
    loadConfig,
)
from gomail_twisted.tap.gomail import Options
from gomail_twisted.tls import selfSignedCertificate
from tests._twistd import GOMAIL_SERVICES


def _pem() -> bytes:
    from cryptography.hazmat.primitives import serialization

    return generatePrivateKey("ed25519").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class ConfigFileTests(SynchronousTestCase):
    """
    The configuration file, read by L{loadConfig}.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).resolve()
        self.directory.mkdir()

    def load(self, text: str, **options: object) -> GomailConfig:
        path = self.directory / "gomail.toml"
        path.write_text(text)
        return loadConfig(str(path), environ={}, **options)  # type: ignore[arg-type]

    def refused(self, text: str, **options: object) -> str:
        """
        The one line a bad file gives.
        """
        error = self.assertRaises(ConfigError, self.load, text, **options)
        message = str(error)
        self.assertNotIn("\n", message)
        return message

    def test_defaults(self) -> None:
        """
        With no file, the data directory is ./gomail-data with the users
        file in it, every service listens on its loopback port, no domain
        is asked for, and no certificate is configured.
        """
        config = loadConfig(None, environ={})
        self.assertEqual(config.data, Path.cwd() / "gomail-data")
        self.assertEqual(config.users, Path.cwd() / "gomail-data" / "users")
        self.assertEqual(config.mail, config.data / "mail")
        self.assertEqual(config.spool, config.data / "queue")
        self.assertEqual(config.domains, ())
        self.assertEqual((config.tlsCert, config.tlsKey), (None, None))
        self.assertEqual(
            dict(config.listen),
            {
                "smtp": ("tcp:2525:interface=127.0.0.1",),
                "submission": ("tcp:2587:interface=127.0.0.1",),
                "submissions": ("tcp:2465:interface=127.0.0.1",),
                "pop3": ("tcp:1110:interface=127.0.0.1",),
                "pop3s": ("tcp:1995:interface=127.0.0.1",),
                "imap": ("tcp:1143:interface=127.0.0.1",),
                "imaps": ("tcp:1993:interface=127.0.0.1",),
            },
        )
        self.assertEqual(config.queue.arguments(), {})
        self.assertEqual(config.access.arguments(), {})
        self.assertEqual((config.dns.nameservers, config.dns.port), (None, 53))

    def test_servicesNamed(self) -> None:
        """
        The twistd tests start the same services the configuration knows.
        """
        self.assertEqual(GOMAIL_SERVICES, SERVICES)

    def test_usersFromEnvironment(self) -> None:
        """
        Without a users key, C{$GOMAIL_USERS} names the users file, as it
        does for C{python -m gomail_twisted users}.
        """
        config = loadConfig(None, environ={"GOMAIL_USERS": "elsewhere/users"})
        self.assertEqual(config.users, Path.cwd() / "elsewhere" / "users")

    def test_everything(self) -> None:
        """
        Every key of the README's example is read, paths taken from the
        file's directory, durations and sizes with their units.
        """
        (self.directory / "mail.example.com.pem").write_bytes(_pem())
        config = self.load(
            'data = "data"\n'
            'hostname = "mx.example.com"\n'
            'domains = ["example.com", "Example.ORG."]\n'
            "[tls]\n"
            'cert = "cert.pem"\n'
            'key = "/etc/key.pem"\n'
            "[listen]\n"
            'smtp = ["tcp:25", "tcp6:25"]\n'
            "pop3 = []\n"
            'imaps = "tcp:993"\n'
            '[dkim."example.com"]\n'
            'selector = "mail"\n'
            'key = "mail.example.com.pem"\n'
            "[smtp]\n"
            'max-message-size = "25M"\n'
            "dkim-verify = false\n"
            "timeout = 120\n"
            "[submission]\n"
            'sender-policy = "any"\n'
            "sent-copy = true\n"
            "max-recipients = 50\n"
            "[imap]\n"
            'max-line-length = "64K"\n'
            "max-append-size = 1048576\n"
            "[queue]\n"
            'lifetime = "5d"\n'
            'delay-warning = "4h"\n'
            "max-deliveries = 20\n"
            "port = 2525\n"
            "[dns]\n"
            'nameservers = ["127.0.0.53", "::1"]\n'
            "port = 5353\n"
            "[access]\n"
            'allow = ["10.0.0.0/8"]\n'
            "block-after-failures = 5\n"
            'block-for = "30m"\n'
        )
        self.assertEqual(config.data, self.directory / "data")
        self.assertEqual(config.hostname, "mx.example.com")
        self.assertEqual(config.domains, ("example.com", "example.org"))
        self.assertEqual(config.tlsCert, self.directory / "cert.pem")
        self.assertEqual(config.tlsKey, Path("/etc/key.pem"))
        self.assertEqual(config.listen["smtp"], ("tcp:25", "tcp6:25"))
        self.assertEqual(config.listen["pop3"], ())
        self.assertEqual(config.listen["imaps"], ("tcp:993",))
        self.assertEqual(config.listen["imap"], DEFAULT_LISTEN["imap"])
        [(domain, key)] = config.dkim.items()
        self.assertEqual((domain, key.selector), ("example.com", "mail"))
        self.assertEqual(key.keyPath, self.directory / "mail.example.com.pem")
        smtp = config.servers["smtp"]
        self.assertEqual(
            (smtp.maxMessageSize, smtp.dkimVerify, smtp.limits()),
            (25 * 2**20, False, {"timeout": 120.0}),
        )
        submission = config.servers["submission"]
        self.assertEqual(
            (submission.senderPolicy, submission.sentCopy, submission.maxRecipients),
            ("any", True, 50),
        )
        imap = config.servers["imap"]
        self.assertEqual((imap.maxLineLength, imap.maxAppendSize), (65536, 2**20))
        self.assertEqual(
            config.queue.arguments(),
            {
                "lifetime": 432000.0,
                "delayWarning": 14400.0,
                "maxDeliveries": 20,
                "port": 2525,
            },
        )
        self.assertEqual(
            (config.dns.nameservers, config.dns.port), (("127.0.0.53", "::1"), 5353)
        )
        self.assertEqual(
            config.access.arguments(),
            {"allow": ("10.0.0.0/8",), "blockAfterFailures": 5, "blockFor": 1800.0},
        )

    def test_commandLineOverFile(self) -> None:
        """
        The command line wins over the file: data, hostname, domains,
        certificate, and the endpoints of the services it names; C{SERVICE=}
        turns a service off.
        """
        config = self.load(
            'hostname = "file.example"\ndomains = ["file.example"]\n'
            '[listen]\nsmtp = ["tcp:25"]\nimap = ["tcp:143"]\n',
            data="here",
            hostname="line.example",
            domains=["line.example"],
            tlsCert="c.pem",
            tlsKey="k.pem",
            listen=["smtp=tcp:0", "smtp=tcp6:0", "imap="],
        )
        self.assertEqual(config.data, Path.cwd() / "here")
        self.assertEqual(config.hostname, "line.example")
        self.assertEqual(config.domains, ("line.example",))
        self.assertEqual(config.tlsCert, Path.cwd() / "c.pem")
        self.assertEqual(config.listen["smtp"], ("tcp:0", "tcp6:0"))
        self.assertEqual(config.listen["imap"], ())

    def test_invalidFile(self) -> None:
        """
        Each bad value is refused with one line: C{gomail: config FILE:},
        the table and key, and what is wrong, quoting the value as the file
        spells it.
        """
        cases = [
            (
                '[queue]\nlifetime = "x"\n',
                "[queue] lifetime: expected a number of "
                'seconds (or "30m", "4h", "5d"), got "x"',
            ),
            ("[queue]\nlifetime = -1\n", "[queue] lifetime: expected a number"),
            ("[queue]\nlifetime = true\n", "[queue] lifetime: expected a number"),
            (
                "[queue]\nlifetim = 1\n",
                "[queue] lifetim: unknown key (known: "
                "lifetime, delay-warning, max-deliveries, max-per-domain, "
                "retry-delay, max-retry-delay, require-tls, port)",
            ),
            (
                "[queue]\nport = 65536\n",
                "[queue] port: expected a port from 1 to 65535, got 65536",
            ),
            (
                '[dns]\nnameservers = ["dns.example"]\n',
                '[dns] nameservers: expected IP addresses, got "dns.example"',
            ),
            ("[dns]\nport = 0\n", "[dns] port: expected a positive whole number"),
            ("[dns]\nservers = []\n", "[dns] servers: unknown key"),
            (
                "[queue]\nmax-deliveries = 0\n",
                "[queue] max-deliveries: expected a positive whole number, got 0",
            ),
            ("[queue]\nmax-deliveries = 1.5\n", "[queue] max-deliveries: "),
            (
                '[smtp]\nmax-message-size = "big"\n',
                "[smtp] max-message-size: "
                'expected a number of bytes (or "64K", "25M"), got "big"',
            ),
            (
                "[smtp]\ndkim-verify = 1\n",
                "[smtp] dkim-verify: expected true or false, got 1",
            ),
            ('[smtp]\nsender-policy = "own"\n', "[smtp] sender-policy: unknown key"),
            (
                '[submission]\nsender-policy = "some"\n',
                '[submission] sender-policy: expected "own" or "any", got "some"',
            ),
            (
                "[imap]\nmax-line-length = 100\n",
                "[imap] max-line-length: expected 1K to 1M bytes, got 100",
            ),
            ('[listen]\nsmtp = ["nonsense:1"]\n', '[listen] smtp: "nonsense:1": '),
            (
                "[listen]\nsmtp = [25]\n",
                "[listen] smtp: expected a list of strings, got [25]",
            ),
            (
                '[listen]\nimaps = ["ssl:993"]\n',
                '[listen] imaps: "ssl:993": give '
                'a plain endpoint such as "tcp:993"; the server adds TLS on imaps',
            ),
            ('[listen]\nsmpt = ["tcp:25"]\n', "[listen] smpt: unknown key"),
            ("listen = 3\n", "listen: expected a table, got 3"),
            (
                'hostname = "not a name"\n',
                'hostname: "not a name" is not an ASCII domain name',
            ),
            ('domains = ["ex ample.com"]\n', "domains: "),
            ("domains = 4\n", "domains: expected a list of strings, got 4"),
            ('data = ""\n', "data: expected a path, got an empty string"),
            ('[tls]\ncert = "c.pem"\n', "[tls] key: cert and key go together"),
            ('[tls]\ncrt = "c.pem"\n', "[tls] crt: unknown key"),
            (
                '[dkim."example.com"]\nkey = "k.pem"\n',
                '[dkim."example.com"] selector: missing',
            ),
            (
                '[dkim."example.com"]\nselector = "s"\nkey = "none.pem"\n',
                '[dkim."example.com"] key: cannot read ',
            ),
            (
                '[dkim."example.com"]\nselector = "s"\nkey = "gomail.toml"\n',
                '[dkim."example.com"] key: ',
            ),
            (
                '[access]\nallow = ["10.0.0.0/33"]\n',
                '[access] allow: "10.0.0.0/33" is not an IP network',
            ),
            (
                "[access]\nblock-after-failures = 0\n",
                "[access] "
                "block-after-failures: expected a positive whole number, got 0",
            ),
            ("nope = 1\n", "nope: unknown key"),
            ("[queue\n", "TOML: "),
        ]
        prefix = f"gomail: config {self.directory / 'gomail.toml'}: "
        for text, expected in cases:
            message = self.refused(text)
            self.assertTrue(message.startswith(prefix + expected), (text, message))

    def test_invalidCommandLine(self) -> None:
        """
        A bad option gives one line naming it, without the file's name.
        """
        cases = [
            (
                {"listen": ["smtp"]},
                "gomail: --listen: 'smtp': expected "
                "SERVICE=ENDPOINT, SERVICE one of " + ", ".join(SERVICES),
            ),
            ({"listen": ["mail=tcp:25"]}, "gomail: --listen: 'mail=tcp:25'"),
            (
                {"listen": ["smtp=ssl:25"]},
                'gomail: smtp: "ssl:25": give a plain '
                'endpoint such as "tcp:25"; the server adds TLS on smtps',
            ),
            (
                {"hostname": "a b"},
                'gomail: --hostname: "a b" is not an ASCII domain name',
            ),
            (
                {"domains": ["a b"]},
                'gomail: --domain: "a b" is not an ASCII domain name',
            ),
            (
                {"tlsCert": "c.pem"},
                "gomail: --tls-cert: --tls-cert and --tls-key go together",
            ),
        ]
        for options, expected in cases:
            message = self.refused("", **options)
            self.assertTrue(message.startswith(expected), (options, message))

    def test_missingFile(self) -> None:
        """
        A configuration file that cannot be read is one line naming it.
        """
        error = self.assertRaises(ConfigError, loadConfig, "missing.toml")
        self.assertEqual(
            str(error), "gomail: --config: missing.toml: No such file or directory"
        )

    def test_errorIsSystemExit(self) -> None:
        """
        A L{ConfigError} is a L{SystemExit}, so that Python prints its one
        line and exits with status 1, and an L{Exception} for twistd.
        """
        error = ConfigError("gomail.toml", "[queue] lifetime", "bad")
        self.assertIsInstance(error, SystemExit)
        self.assertIsInstance(error, Exception)
        self.assertEqual(
            str(error), "gomail: config gomail.toml: [queue] lifetime: bad"
        )

    @given(st.integers(min_value=1, max_value=10**6), st.sampled_from("smhd"))
    def test_durations(self, number: int, unit: str) -> None:
        """
        A duration with a unit is that many seconds, minutes, hours or days.
        """
        path = Path(self.mktemp())
        path.write_text(f'[queue]\nlifetime = "{number}{unit}"\n')
        config = loadConfig(str(path), environ={})
        factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        self.assertEqual(config.queue.lifetime, number * factor)


class OptionsTests(SynchronousTestCase):
    """
    L{Options}, the command line twistd parses.
    """

    def test_noArguments(self) -> None:
        """
        With no arguments, the configuration is the embedded default.
        """
        options = Options()
        options.parseOptions([])
        self.assertEqual(options["config"], loadConfig(None))
        self.assertIsNone(options["file"])

    def test_repeatable(self) -> None:
        """
        C{--domain} and C{--listen} may be given more than once.
        """
        options = Options()
        options.parseOptions(
            [
                "--domain=example.com",
                "--domain=example.org",
                "--listen=smtp=tcp:0",
                "--listen=pop3=",
            ]
        )
        config = options["config"]
        self.assertEqual(config.domains, ("example.com", "example.org"))
        self.assertEqual(
            (config.listen["smtp"], config.listen["pop3"]), (("tcp:0",), ())
        )

    def test_certificateChecked(self) -> None:
        """
        A certificate that cannot be read, or is not PEM, is refused while
        parsing, naming the option or the key.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "junk.pem").write_text("junk")
        cases = [
            (
                ["--tls-cert=missing-cert.pem", "--tls-key=missing-key.pem"],
                "gomail: --tls-cert: cannot read ",
            ),
            (
                [f"--tls-cert={directory}/junk.pem", f"--tls-key={directory}/junk.pem"],
                "gomail: --tls-cert: ",
            ),
        ]
        certificate = directory / "cert.pem"
        certificate.write_bytes(selfSignedCertificate("localhost")[1])
        cases.append(
            (
                [f"--tls-cert={certificate}", "--tls-key=missing.pem"],
                "gomail: --tls-key: cannot read ",
            )
        )
        for argv, expected in cases:
            options = Options()
            error = self.assertRaises(ConfigError, options.parseOptions, argv)
            self.assertTrue(str(error).startswith(expected), str(error))
        config = directory / "gomail.toml"
        config.write_text('[tls]\ncert = "junk.pem"\nkey = "junk.pem"\n')
        options = Options()
        error = self.assertRaises(
            ConfigError, options.parseOptions, [f"--config={config}"]
        )
        self.assertTrue(
            str(error).startswith(f"gomail: config {config}: [tls] cert: "), str(error)
        )
