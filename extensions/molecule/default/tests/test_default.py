"""Outcomes of role `common` on real systemd containers."""

import os

import testinfra.utils.ansible_runner

# The inventory names the hosts; podman exec reaches them (much faster than
# testinfra's ansible backend, which runs one ad-hoc command per check).
testinfra_hosts = [
    "podman://" + name
    for name in testinfra.utils.ansible_runner.AnsibleRunner(
        os.environ["MOLECULE_INVENTORY_FILE"]
    ).get_hosts("all")
]


def test_systemd_is_pid_1_and_running(host):
    assert host.check_output("ps -p 1 -o comm=") == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), host.check_output("systemctl --failed --no-legend")


def test_base_and_extra_packages_installed(host):
    for name in ("ca-certificates", "tzdata", "rsyslog", "cron", "dnsutils", "rsync"):
        assert host.package(name).is_installed, name


def test_time_zone(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Berlin"
    assert host.file("/etc/timezone").content_string.strip() == "Europe/Berlin"
    assert host.check_output("date +%Z") in ("CET", "CEST")


def test_ntp_servers(host):
    conf = host.file("/etc/systemd/timesyncd.conf.d/mailstack.conf")
    assert conf.mode == 0o644
    assert "NTP=ntp1.example.test ntp2.example.test" in conf.content_string


def test_host_name_is_inventory_name(host):
    assert host.check_output("hostname") == host.backend.get_hostname()


def test_logging_and_cron_run(host):
    assert host.service("rsyslog").is_running
    assert host.service("cron").is_running


def test_resolver_written_only_where_asked(host):
    resolv = host.file("/etc/resolv.conf").content_string
    if host.backend.get_hostname() == "ms-default-filter":
        assert "search mail.test" in resolv
        assert "Ansible managed" in resolv
        # The resolver we wrote still resolves the other lab host.
        assert host.run("getent hosts ms-default-mail").rc == 0
    else:
        assert "Ansible managed" not in resolv
