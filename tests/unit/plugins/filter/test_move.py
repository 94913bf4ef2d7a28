"""The users move_user.yml moves: one form of three, every address checked,
a bad line of the file named by its number."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.filter.move import mail_move_list


def test_one_address():
    assert mail_move_list(" Alice@Example.org ") == ["alice@example.org"]


@pytest.mark.parametrize("emails", [
    ["alice@example.org", "bob@example.org"],
    "alice@example.org,bob@example.org",
    "alice@example.org\nbob@example.org\n",
    ["alice@example.org, bob@example.org", "ALICE@example.org"],
])
def test_a_list_or_a_text_of_addresses_in_order_each_once(emails):
    assert mail_move_list(None, emails) == ["alice@example.org", "bob@example.org"]


def test_a_file_skips_blank_lines_and_comments():
    text = "# to ms3, ticket 42\n\nbob@example.org\n   # carol stays\n  alice@example.org  \nbob@example.org\n"
    assert mail_move_list(None, None, text, "users.txt") == ["bob@example.org", "alice@example.org"]


def test_a_bad_line_is_named_with_its_number():
    text = "alice@example.org\n# fine\nbob example.org\n"
    with pytest.raises(AnsibleFilterError, match=r"mailstack_move_file users.txt: line 3: 'bob example.org' is not an"):
        mail_move_list(None, None, text, "users.txt")


def test_a_bad_item_of_the_list_is_named():
    with pytest.raises(AnsibleFilterError, match=r"mailstack_move_emails: item 2: 'bob' is not an address"):
        mail_move_list(None, ["alice@example.org", "bob"])


def test_a_bad_single_address_is_refused():
    with pytest.raises(AnsibleFilterError, match=r"mailstack_move_email: 'alice' is not an address"):
        mail_move_list("alice")


@pytest.mark.parametrize("forms, named", [
    (("a@x", ["b@x"], None), "got mailstack_move_email and mailstack_move_emails"),
    (("a@x", None, "b@x\n"), "got mailstack_move_email and mailstack_move_file"),
    ((None, ["b@x"], "c@x"), "got mailstack_move_emails and mailstack_move_file"),
    ((None, None, None), "got none"),
    (("", [], ""), "got none"),
])
def test_exactly_one_form(forms, named):
    with pytest.raises(AnsibleFilterError, match="give the users to move in one form.*" + named):
        mail_move_list(*forms)


def test_a_file_of_comments_only_names_no_address():
    with pytest.raises(AnsibleFilterError, match="mailstack_move_file names no address"):
        mail_move_list(None, None, "# nobody yet\n", "users.txt")


def test_a_list_of_another_type_is_refused():
    with pytest.raises(AnsibleFilterError, match="mailstack_move_emails: a list of addresses, not dict"):
        mail_move_list(None, {"a@x": 1})
