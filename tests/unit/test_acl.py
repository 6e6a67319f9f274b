# SPDX-License-Identifier: BSD-3-Clause
"""The ACL roles as rules: what each role is granted, and that an ACL line holds no password.
(tests/integration/test_security.py attacks a real Redis with them.)"""

from __future__ import annotations

from rhc.wire.acl import ADMIN, MANAGER, MONITOR, WORKER, User, acl_line, rules, user_name


def test_a_namespace_role_reaches_only_its_namespace_and_grants_commands_one_by_one():
    for role in (MANAGER, WORKER):
        granted = rules(role, "alice")
        keys = [rule for rule in granted if "~" in rule]
        assert keys and all(rule.split("~", 1)[1].startswith("rhc:alice:") for rule in keys)
        after = [rule for rule in granted[granted.index("-@all") + 1 :] if rule[0] != "("]
        assert after == [rule for rule in granted if rule.startswith("+")]
        assert not {"+@all", "+keys", "+scan", "+flushall", "+config", "+acl"} & set(granted)
        assert "&rhc:alice:control" in granted


def test_workers_only_read_functions_and_never_see_the_notebooks_bookkeeping():
    granted = rules(WORKER, "alice")
    assert "%R~rhc:alice:fn:*" in granted
    assert not [rule for rule in granted if rule.startswith("~rhc:alice:fn")]
    assert not [rule for rule in granted if "affinity" in rule or "jobs" in rule]
    assert "+publish" not in granted and "+subscribe" in granted
    assert "+publish" in rules(MANAGER, "alice")


def test_workers_may_add_marks_of_batches_run_and_never_change_or_remove_them():
    granted = rules(WORKER, "alice")
    assert "(~rhc:alice:ran:* +hsetnx +hexists +hget)" in granted
    assert not [rule for rule in granted if rule.startswith("~") and "ran" in rule]
    # scripts may name them among their keys, and whatever they run is checked as above
    (scripts,) = [rule for rule in granted if rule.startswith("(") and "+evalsha" in rule]
    assert "~rhc:alice:ran:*" in scripts and scripts.endswith(" +evalsha)")


def test_the_monitor_reads_and_only_the_admin_administers():
    assert "%R~rhc:*" in rules(MONITOR) and "+set" not in rules(MONITOR)
    assert rules(ADMIN) == ["on", "~*", "&*", "+@all"]
    assert user_name(MONITOR) == "monitor" and user_name(WORKER, "alice") == "worker-alice"


def test_an_acl_line_holds_the_passwords_hash_not_the_password():
    user = User("worker-alice", "a-password-nobody-may-read")
    line = acl_line(user, WORKER, "alice")
    assert line.startswith("user worker-alice reset on ")
    assert "a-password-nobody-may-read" not in line and "a-password" not in repr(user)
    assert line.split()[-1].startswith("#") and len(line.split()[-1]) == 65
