"""tools/provider_schema.py: argument names and required arguments read from cdktf bindings.

The bindings are written here in the exact shape @cdktf/provider-google generates (one interface per
block, each property documented with a registry link naming its Terraform argument, `?` for
optional ones, sometimes a note between the link and the end of the comment), so the parser and
the checks are tested without the 31 MB package; `make deploy-check` runs them on the real one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import provider_schema  # noqa: E402  (tools/ is not a package)

DOCS_URL = "https://registry.terraform.io/providers/hashicorp/google/6.50.0/docs/resources/cloud_tasks_queue"
BINDINGS = """
export interface CloudTasksQueueConfig extends cdktf.TerraformMetaArguments {
    /**
    * Docs at Terraform Registry: {@link DOCS#location CloudTasksQueue#location}
    */
    readonly location: string;
    /**
    * Docs at Terraform Registry: {@link DOCS#name CloudTasksQueue#name}
    *
    * Note: The above comment contained a comment block ending sequence (* followed by /).
    */
    readonly name?: string;
    /**
    * http_target block
    *
    * Docs at Terraform Registry: {@link DOCS#http_target CloudTasksQueue#http_target}
    */
    readonly httpTarget?: CloudTasksQueueHttpTarget;
}
export interface CloudTasksQueueHttpTargetUriOverride {
    /**
    * Docs at Terraform Registry: {@link DOCS#host CloudTasksQueue#host}
    */
    readonly host?: string;
    /**
    * Docs at Terraform Registry: {@link DOCS#scheme CloudTasksQueue#scheme}
    */
    readonly scheme: string;
}
export interface CloudTasksQueueHttpTarget {
    /**
    * Docs at Terraform Registry: {@link DOCS#http_method CloudTasksQueue#http_method}
    */
    readonly httpMethod?: string;
    /**
    * uri_override block
    *
    * Docs at Terraform Registry: {@link DOCS#uri_override CloudTasksQueue#uri_override}
    */
    readonly uriOverride?: CloudTasksQueueHttpTargetUriOverride;
}
""".replace("DOCS", DOCS_URL)


def _schema(tmp_path: Path) -> provider_schema.Schema:
    folder = tmp_path / "lib" / "cloud-tasks-queue"
    folder.mkdir(parents=True)
    (folder / "index.d.ts").write_text(BINDINGS)
    return provider_schema.Schema(tmp_path / "lib")


def _check(tmp_path: Path, resource: str) -> list[str]:
    terraform = tmp_path / "terraform"
    terraform.mkdir()
    (terraform / "tasks.tf").write_text(resource)
    return provider_schema.check_files(terraform, _schema(tmp_path))


def test_blocks_are_read_with_their_arguments_and_required_ones(tmp_path):
    blocks = _schema(tmp_path).blocks("google_cloud_tasks_queue")
    assert blocks["CloudTasksQueueConfig"].arguments == {"location", "name", "http_target"}
    assert blocks["CloudTasksQueueConfig"].required == {"location"}
    assert blocks["CloudTasksQueueHttpTargetUriOverride"].required == {"scheme"}


def test_a_correct_resource_passes(tmp_path):
    assert _check(tmp_path, """
resource "google_cloud_tasks_queue" "q" {
  for_each = local.queues
  location = "us-central1"
  http_target {
    http_method = "POST"
    uri_override {
      scheme = "HTTPS"
      host   = "x.run.app"
    }
  }
}
""") == []


def test_a_misspelled_nested_argument_and_a_missing_required_one_are_named(tmp_path):
    errors = _check(tmp_path, """
resource "google_cloud_tasks_queue" "q" {
  name = "netsuite"
  http_target {
    uri_override {
      schme = "HTTPS"
    }
  }
}
""")
    assert sorted(errors) == [
        "tasks.tf: google_cloud_tasks_queue.q.http_target.uri_override: required argument 'scheme' is not set",
        "tasks.tf: google_cloud_tasks_queue.q.http_target.uri_override: unknown argument or block 'schme'",
        "tasks.tf: google_cloud_tasks_queue.q: required argument 'location' is not set",
    ]


def test_dynamic_blocks_are_checked_and_an_unknown_resource_type_is_named(tmp_path):
    errors = _check(tmp_path, """
resource "google_cloud_tasks_queue" "q" {
  location = "us-central1"
  dynamic "http_targets" {
    for_each = []
    content {
      http_method = "POST"
    }
  }
}

resource "google_cloud_task_queue" "typo" {
  location = "us-central1"
}
""")
    assert "tasks.tf: google_cloud_tasks_queue.q: unknown block 'http_targets'" in errors
    assert "tasks.tf: google_cloud_task_queue is not a resource of google provider 6.50.0" in errors
