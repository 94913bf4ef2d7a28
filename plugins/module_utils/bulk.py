# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run of a provisioning module of the mail database, in one place.

``BulkModule.run`` is the order every provisioning module (mail_user,
mail_domain, mail_alias, mail_host) follows:

1. the argument spec (the shared connection options and the module's own);
2. ``validate``: every entry checked without the database; all errors are
   collected (naming the entry and the field) and nothing goes further while
   there is one;
3. connect and check the schema version;
4. ``read`` the existing rows, then ``plan`` what to create, change, leave or
   remove (the plan may find more errors, such as an unknown domain: the run
   stops before any write);
5. unless in check mode, ``write`` everything in one transaction, committed
   once; a database error rolls it back and says that nothing was changed;
   a transaction that ends with 1213 (a Galera certification conflict: another
   node changed the same rows first) is rolled back and run again from step 4
   (a blind re-commit could lose that other change), up to
   ``maildb.WRITE_RETRIES`` times, with a pause and jitter; ``retries`` in
   the result counts them;
6. ``result``: counts, items, the diff, the single form's row.

A module subclasses it, sets the class attributes and fills in the hooks.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    WRITE_RETRIES, EntryErrors, Report, connect, db_error_text, invocation, is_deadlock, maildb_argument_spec,
    pymysql, require_schema, retry_pause,
)

STATES = ('present', 'absent')


def entry_key(entry, field):
    """The entry's key (its address or name) for error messages, when it is a string."""
    value = entry.get(field)
    return value if isinstance(value, str) else None


class BulkModule(object):
    """Skeleton of a provisioning module; subclasses fill in the hooks below."""

    # The module's own options, added to the connection options.
    argument_spec = {}
    # Further AnsibleModule arguments (mutually_exclusive, required_one_of).
    module_options = {}
    # The option that holds the bulk form's list (None: single form only).
    list_option = None
    # Lowest schema version the module works with.
    schema_version = 1
    # Whether results and failures carry the module's own summarised invocation.
    report_invocation = True
    # The return value that holds the single form's row (after the run; before it, when removed).
    single_key = None

    def __init__(self):
        spec = maildb_argument_spec()
        spec.update(self.argument_spec)
        self.module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **self.module_options)
        self.params = self.module.params
        self.prepare()
        self.invocation = invocation(self.params, bulk_keys=(self.list_option,) if self.list_option else ())
        self.errors = EntryErrors(self.list_name())
        self.new_report()
        # Transactions run again after a 1213 (Galera certification conflict).
        self.retries = 0

    def new_report(self):
        """An empty report (at the start, and before a retried read and plan)."""
        self.report = Report(report_items=self.params.get('report_items', False), want_diff=self.module._diff)
        # The single form's row, which plan sets (a dict, or None when there is none).
        self.single = None

    # --- hooks ---

    def prepare(self):
        """Checks right after the arguments are parsed (a missing library, no_log values)."""

    def list_name(self):
        """The list errors name entries by (``users[3]``); None for the single form."""
        if self.list_option and self.params[self.list_option] is not None:
            return self.list_option
        return None

    def validate(self):
        """Check the entries without the database; add errors to self.errors."""
        raise NotImplementedError

    def read(self, cursor):
        """Read the rows the plan needs."""
        raise NotImplementedError

    def plan(self, cursor):
        """Decide every change, add to self.report; errors stop the run before any write."""
        raise NotImplementedError

    def before_retry(self):
        """Forget what the plan of a rolled-back transaction decided on the
        entries (validate's work stays)."""

    def has_changes(self):
        """Whether there is anything to write."""
        return self.report.changed

    def write(self, cursor):
        """Write the plan (in the transaction ``run`` commits)."""
        raise NotImplementedError

    def result(self):
        """The module's return values (invocation apart)."""
        result = self.report.result()
        if self.single_key and self.errors.list_name is None and self.single:
            result[self.single_key] = self.single
        return result

    def database_error_message(self, text):
        return 'Database error, nothing was changed: %s' % text

    # --- the run ---

    def invocation_result(self):
        return dict(invocation=self.invocation) if self.report_invocation else {}

    def fail_on_errors(self):
        if self.errors:
            self.errors.fail(self.module, **self.invocation_result())

    def run(self):
        self.validate()
        self.fail_on_errors()
        connection = connect(self.module)
        try:
            require_schema(self.module, connection, self.schema_version)
            while True:
                try:
                    self.transaction(connection)
                    break
                except pymysql.err.MySQLError as exc:
                    connection.rollback()
                    if not is_deadlock(exc) or self.retries >= WRITE_RETRIES:
                        raise
                self.retries += 1
                retry_pause(self.retries)
                self.new_report()
                self.before_retry()
        except pymysql.err.MySQLError as exc:
            connection.rollback()
            self.module.fail_json(msg=self.database_error_message(db_error_text(exc)), retries=self.retries,
                                  **self.invocation_result())
        except Exception:
            connection.rollback()
            raise
        finally:
            connection.close()
        result = self.invocation_result()
        result.update(self.result())
        result['retries'] = self.retries
        self.module.exit_json(**result)

    def transaction(self, connection):
        """Read, plan and (unless in check mode) write and commit."""
        cursor = connection.cursor()
        try:
            self.read(cursor)
            self.plan(cursor)
            self.fail_on_errors()
            if not self.module.check_mode and self.has_changes():
                self.write(cursor)
                connection.commit()
            else:
                # Ends the read's snapshot (REPEATABLE READ): a retry reads afresh.
                connection.rollback()
        finally:
            cursor.close()

    # --- helpers for validate ---

    def parse_value(self, index, key, field, value, parse, default=None, *args):
        """parse(value, *args), or default when value is None or invalid (the error is recorded)."""
        if value is None:
            return default
        try:
            return parse(value, *args)
        except ValueError as exc:
            self.errors.add(index, key, field, str(exc))
            return default

    def parse_required(self, index, key, field, value, parse):
        """parse(value); None when value is missing or invalid (the error is recorded)."""
        try:
            if value is None:
                raise ValueError('is required')
            return parse(value)
        except ValueError as exc:
            self.errors.add(index, key, field, str(exc))
            return None

    def is_duplicate(self, seen, index, key, field, position):
        """Whether key came in an earlier entry (recorded as an error); remembers it otherwise."""
        if key in seen:
            self.errors.add(index, key, field, 'duplicate of entry %d' % seen[key])
            return True
        seen[key] = position
        return False

    # --- helpers for plan ---

    def reclassify_unchanged_as_updated(self, key):
        """An entry reported unchanged turns out to change (a mail_user alias is added)."""
        report = self.report
        report.counts['unchanged'] -= 1
        if report.report_items:
            report.items['unchanged'].remove(key)
        report.add('updated', key, None, None)
