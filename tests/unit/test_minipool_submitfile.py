# SPDX-License-Identifier: BSD-3-Clause
"""The mini pool reads submit descriptions as condor_submit does: htcondor2 parses them, and
the pool interprets arguments, environment, sizes, queue N and custom attributes."""

from __future__ import annotations

import pytest

from rhc.condor.minipool.errors import SubmitFileError
from rhc.condor.minipool.submitfile import (
    STDERR_NAME,
    STDOUT_NAME,
    interpret,
    transfer_paths,
)
from rhc.condor.minipool.syntax import disk_kb, memory_mb, parse_environment, split_arguments
from tests.conftest import REPOSITORY


def one(text: str, cluster: int = 7):
    (spec,) = interpret(text, cluster)
    return spec


@pytest.mark.parametrize(
    ("value", "argv"),
    [
        ('"3 simple arguments"', ["3", "simple", "arguments"]),
        ("\"one 'two with spaces' 3\"", ["one", "two with spaces", "3"]),
        (
            "\"one \"\"two\"\" 'spacey ''quoted'' argument'\"",
            ["one", '"two"', "spacey 'quoted' argument"],
        ),
        ("\"-c 'print(1)' ''\"", ["-c", "print(1)", ""]),
        ("\"a'b c'd\"", ["ab cd"]),
        ("one \\\"two\\\" 'three'", ["one", '"two"', "'three'"]),
        ("  old   style\twords ", ["old", "style", "words"]),
        ("", []),
    ],
)
def test_arguments_split_into_argv_as_condor_does(value, argv):
    assert split_arguments(value) == argv


@pytest.mark.parametrize("value", ['"unclosed', '"one \'two"', '"a " b"', 'old "quote'])
def test_arguments_with_unbalanced_quotes_are_refused(value):
    with pytest.raises(SubmitFileError, match="arguments"):
        split_arguments(value)


def test_the_environment_reads_new_and_old_style():
    assert parse_environment("\"A=1 B='x y' C='it''s' D=\"") == {
        "A": "1",
        "B": "x y",
        "C": "it's",
        "D": "",
    }
    assert parse_environment("A=1;B=two words") == {"A": "1", "B": "two words"}
    with pytest.raises(SubmitFileError, match="NAME=value"):
        parse_environment('"A=1 oops"')


@pytest.mark.parametrize(
    ("value", "mb"),
    [
        ("2048", 2048),
        ("2 GB", 2048),
        ("2g", 2048),
        ("1.5GB", 1536),
        ("512MB", 512),
        ("1024 kb", 1),
        ("1500K", 2),  # rounded up, as condor does
        ("1TB", 1024 * 1024),
        ("4GiB", 4096),
    ],
)
def test_request_memory_reads_bare_numbers_as_megabytes_and_units_case_insensitively(value, mb):
    assert memory_mb(value) == mb


def test_request_disk_reads_bare_numbers_as_kilobytes():
    assert disk_kb("100") == 100
    assert disk_kb("4GB") == 4 * 1024 * 1024


@pytest.mark.parametrize("value", ["2048 + 1024", "ifThenElse(x, 1, 2)", "MemoryUsage", "-1", "0"])
def test_request_memory_expressions_are_refused_clearly(value):
    with pytest.raises(SubmitFileError, match="request_memory"):
        memory_mb(value)


def test_queue_n_makes_procs_0_to_n_minus_1_with_their_own_macros():
    # Given a description with per-proc macros
    text = """
        executable = /bin/echo
        arguments = "proc $(ProcId) of $(ClusterId) ($(Process), $(Cluster))"
        output = out.$(ClusterId).$(ProcId)
        queue 3
    """
    # When the pool interprets it for cluster 12
    specs = interpret(text, 12)
    # Then there are procs 0, 1, 2, each with its own expansion
    assert [spec.proc for spec in specs] == [0, 1, 2]
    assert specs[2].arguments == ("proc", "2", "of", "12", "(2,", "12)")
    assert [spec.output for spec in specs] == ["out.12.0", "out.12.1", "out.12.2"]
    assert specs[0].error == STDERR_NAME


def test_a_bare_queue_is_one_proc_and_defaults_apply():
    spec = one("executable = /bin/true\nqueue\n")
    assert spec.universe == "vanilla"
    assert spec.request_cpus == 1
    assert spec.request_memory_mb == 128
    assert spec.request_disk_kb is None
    assert (spec.output, spec.error) == (STDOUT_NAME, STDERR_NAME)
    assert spec.transfer_executable is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("executable = /bin/true\n", "no queue statement"),
        ("executable = /bin/true\nqueue 1\narguments = x\nqueue 2\n", "follows the queue"),
        ("executable = /bin/true\nqueue item in (a b)\n", "queue item in"),
        ("executable = /bin/true\nqueue 0\n", "queue"),
        ("universe = vanilla\nqueue\n", "needs an executable"),
        ("universe = docker\nexecutable = x\nqueue\n", "needs a docker_image"),
        ("executable = /bin/true\ninput = data.txt\nqueue\n", "stdin"),
        ("executable = /bin/true\nrequest_cpus = 1.5\nqueue\n", "request_cpus"),
        ("executable = /bin/true\ntransfer_executable = maybe\nqueue\n", "transfer_executable"),
        ("executable = /bin/true\ntransfer_input_files = http://x/y\nqueue\n", "URLs"),
        ("executable = /bin/true\ntransfer_input_files = data/\nqueue\n", "directories"),
        ("this is not a submit file\nqueue\n", "cannot parse"),
    ],
)
def test_descriptions_the_pool_cannot_run_faithfully_are_refused_with_the_reason(text, message):
    with pytest.raises(SubmitFileError, match=message):
        interpret(text, 1)


@pytest.mark.parametrize("universe", ["container", "grid", "bogus", "Parallel"])
def test_an_unsupported_universe_refuses_the_whole_submit_and_names_it(universe):
    text = f"universe = {universe}\nexecutable = /bin/true\nqueue 2\n"
    with pytest.raises(SubmitFileError, match=f"universe '{universe.lower()}' is not supported"):
        interpret(text, 1)


def test_custom_attributes_are_kept_as_classad_expressions():
    # Given both spellings of a custom attribute (htcondor2 turns +Name into MY.Name)
    spec = one(
        """
        executable = /bin/true
        +DESIRED_Sites = "T2_US_UCSD,T2_US_Caltech"
        MY.Priority = 3 + 4
        my.WantsGPU = false
        queue
        """
    )
    # Then each keeps its name and its expression text
    assert spec.attributes == {
        "DESIRED_Sites": '"T2_US_UCSD,T2_US_Caltech"',
        "Priority": "3 + 4",
        "WantsGPU": "false",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("+ClusterId = 5", "sets ClusterId itself"),
        ('+Broken = "unclosed', "not a ClassAd expression"),
        ("MY.RequestMemory = 1", "sets RequestMemory itself"),
    ],
)
def test_custom_attributes_that_clash_or_do_not_parse_are_refused(line, message):
    with pytest.raises(SubmitFileError, match=message):
        interpret(f"executable = /bin/true\n{line}\nqueue\n", 1)


@pytest.mark.parametrize(
    "line",
    ["JobBatchName = rhc-workers", 'batch_name = "rhc-workers"', '+JobBatchName = "rhc-workers"'],
)
def test_every_spelling_of_the_batch_name_is_read(line):
    spec = one(f"executable = /bin/true\n{line}\nqueue\n")
    assert spec.batch_name == "rhc-workers"
    assert "JobBatchName" not in spec.attributes


def test_commands_are_case_insensitive_and_sizes_convert():
    spec = one(
        """
        Universe = Docker
        Docker_Image = rhc/worker:0.1.0
        Executable = rhc
        Transfer_Executable = False
        Request_Cpus = 2
        Request_Memory = 4 GB
        Request_Disk = 1G
        Transfer_Input_Files = /home/a/rhc.toml , extra.txt
        Queue
        """
    )
    assert (spec.universe, spec.docker_image, spec.executable) == (
        "docker",
        "rhc/worker:0.1.0",
        "rhc",
    )
    assert spec.transfer_executable is False
    assert (spec.request_cpus, spec.request_memory_mb, spec.request_disk_kb) == (2, 4096, 1048576)
    assert spec.transfer_input_files == ("/home/a/rhc.toml", "extra.txt")
    assert spec.input_names == ["rhc.toml", "extra.txt"]
    assert spec.executable_name is None


def test_the_paths_a_submitter_sends_are_the_executable_and_the_inputs():
    text = "executable = run.sh\ntransfer_input_files = a.toml, data/b.txt\nqueue 2\n"
    assert transfer_paths(text) == (["run.sh"], ["a.toml", "data/b.txt"])
    no_exe = "executable = /bin/sh\ntransfer_executable = false\nx509userproxy = /tmp/x509\nqueue\n"
    assert transfer_paths(no_exe) == ([], ["/tmp/x509"])


def test_the_worker_descriptions_rhc_writes_are_accepted_except_apptainers():
    # Given the golden submit files of rhc.condor.description
    golden = REPOSITORY / "condor"
    # Then the docker and vanilla ones run in the mini pool, with their 10 procs
    docker = interpret((golden / "docker.sub").read_text(), 3)
    assert len(docker) == 10
    assert docker[9].output == "rhc-worker.3.9.out"
    assert docker[0].attributes == {"DESIRED_Sites": '"T2_US_UCSD,T2_US_Caltech"'}
    assert docker[0].batch_name == "rhc-workers"
    assert docker[0].arguments[:3] == ("worker", "redis://redis.example.org:6379", "--config")
    vanilla = interpret((golden / "vanilla.sub").read_text(), 3)
    assert vanilla[0].input_names == ["rhc.toml", "rhc-env.tar.gz"]
    # And the container universe (Apptainer) is refused, naming the universe
    with pytest.raises(SubmitFileError, match="universe 'container'"):
        interpret((golden / "container.sub").read_text(), 3)
