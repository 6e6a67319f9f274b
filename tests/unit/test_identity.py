# SPDX-License-Identifier: BSD-3-Clause
"""Who a worker is: its HTCondor job id from the job ad, and its default name."""

from __future__ import annotations

import os

from rhc.worker.identity import (
    cache_budget,
    condor_job_id,
    default_worker_name,
    job_memory_bytes,
)

JOB_AD = """\
Args = "worker"
ClusterId = 1234
Cmd = "/usr/bin/rhc"
DAGManJobId = 99
GlobalJobId = "submit.example.org#1234.7#1700000000"
JobStatus = 2
Owner = "alice"
ProcId = 7
QDate = 1700000000
RequestMemory = 2048
"""


def test_the_condor_job_id_is_read_from_the_job_ad(tmp_path):
    ad = tmp_path / ".job.ad"
    ad.write_text(JOB_AD)

    assert condor_job_id(ad) == "1234.7"


def test_the_condor_job_id_is_read_from_a_job_ad_with_crlf_line_ends(tmp_path):
    ad = tmp_path / ".job.ad"
    ad.write_bytes(JOB_AD.replace("\n", "\r\n").encode())

    assert condor_job_id(ad) == "1234.7"


def test_a_job_ad_without_proc_id_means_proc_zero(tmp_path):
    ad = tmp_path / ".job.ad"
    ad.write_text('ClusterId = 55\nOwner = "alice"\n')

    assert condor_job_id(ad) == "55.0"


def test_there_is_no_condor_job_id_outside_condor():
    assert condor_job_id(None) is None


def test_there_is_no_condor_job_id_when_the_job_ad_cannot_be_read(tmp_path):
    assert condor_job_id(tmp_path / "missing.ad") is None
    assert condor_job_id(tmp_path) is None  # a directory


def test_there_is_no_condor_job_id_when_the_job_ad_lacks_a_cluster_id(tmp_path):
    ad = tmp_path / ".job.ad"
    ad.write_text('ProcId = 7\nDAGManJobId = 99\nGlobalJobId = "s#1234.7#1"\n')

    assert condor_job_id(ad) is None


def test_the_default_worker_name_is_the_short_host_and_the_condor_id_or_pid():
    assert default_worker_name("node12.cluster.example.org", "1234.7", 999) == "node12-1234.7"
    assert default_worker_name("node12.cluster.example.org", None, 999) == "node12-999"
    assert default_worker_name("laptop", None, 42) == "laptop-42"
    assert default_worker_name("", None, 42) == "worker-42"


def test_the_job_memory_comes_from_condors_request_memory(tmp_path):
    ad = tmp_path / ".job.ad"
    ad.write_text("ClusterId = 1\nRequestMemory = 2048\nRequestCpus = 1\n")
    assert job_memory_bytes(ad) == 2048 * 2**20


def test_without_condor_the_job_memory_is_the_machines_at_most():
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < job_memory_bytes(None) <= total


def test_the_cache_budget_never_exceeds_half_the_jobs_memory(tmp_path):
    ad = tmp_path / ".job.ad"
    ad.write_text("RequestMemory = 1000\n")
    job_memory = job_memory_bytes(ad)
    assert cache_budget(None, job_memory) == 500 * 2**20
    assert cache_budget(100, job_memory) == 100
    assert cache_budget(10 * 2**30, job_memory) == 500 * 2**20
