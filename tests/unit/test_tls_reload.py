"""Every certificate source reloads the services that serve the certificate
(issue 26 item 4): each task of the tls role that writes the certificate or
its key (lab CA, provided, the ACME stand-in) notifies the handler, the
handler runs the reload script, and certbot's deploy hook (ACME) calls the
same script. The scenarios prove the reload on real services (single: the
ACME renewal; sharded: the DNS-01 renewal of the SMTP tier)."""

from pathlib import Path

import yaml

TLS = Path(__file__).resolve().parents[2] / "roles" / "tls"
HANDLER = "Reload the services that serve the certificate"
WRITES = ("{{ tls_cert_file }}", "{{ tls_key_file }}")


def tasks(items):
    """Every task, blocks flattened."""
    for item in items or []:
        if "block" in item:
            yield from tasks(item["block"])
        else:
            yield item


def writes_the_certificate(task):
    """The task's module writes tls_cert_file or tls_key_file."""
    for module, args in task.items():
        if isinstance(args, dict) and module.startswith(("ansible.builtin.", "community.crypto.")):
            if args.get("dest") in WRITES or args.get("path") in WRITES or args.get("creates") in WRITES:
                return not module.endswith((".stat", ".slurp", "_info", ".file"))
    return False


def test_every_write_of_the_certificate_or_its_key_notifies_the_reload():
    main = yaml.safe_load((TLS / "tasks" / "main.yml").read_text())
    writers = [t for t in tasks(main) if writes_the_certificate(t)]
    # lab CA key and certificate, provided key and chain, the ACME stand-in's key and certificate.
    assert len(writers) == 6, [t["name"] for t in writers]
    silent = [t["name"] for t in writers if t.get("notify") != HANDLER]
    assert silent == [], silent


def test_the_handler_runs_the_script_the_deploy_hook_calls():
    handlers = yaml.safe_load((TLS / "handlers" / "main.yml").read_text())
    handler = next(h for h in handlers if h["name"] == HANDLER)
    assert handler["ansible.builtin.command"] == "{{ tls__reload_script }}"
    hook = (TLS / "templates" / "usr" / "local" / "sbin" / "mailstack-acme-deploy.j2").read_text()
    assert "\n{{ tls__reload_script }}\n" in hook
    script = (TLS / "templates" / "usr" / "local" / "sbin" / "mailstack-tls-reload.j2").read_text()
    assert 'systemctl reload "$unit"' in script and "tls__reload_units" in script
    units = yaml.safe_load((TLS / "vars" / "main.yml").read_text())["tls__reload_units"]
    assert units == ["postfix", "dovecot", "nginx"]
