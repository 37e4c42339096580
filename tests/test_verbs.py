"""The verb list exists once: routes, OpenAPI, ``wasup ctl`` and the planner all follow Verb."""

from __future__ import annotations

import argparse
import re

from supervisor.ctl import add_arguments
from supervisor.http._app import ROUTES
from supervisor.http._openapi import openapi_document
from supervisor.settings import HttpConfig
from supervisor.verbs import ROUTED, Verb

_VERB_PATH = re.compile(r"/v1/instances/\{id\}/([a-z_]+)$")
_OTHER_POSTS = {"pairing-code"}


def test_every_routed_verb_has_its_post_route_and_nothing_else_does() -> None:
    posted = {
        m.group(1)
        for method, path, _handler, _access in ROUTES
        if method == "POST" and (m := _VERB_PATH.search(path))
    }
    assert posted - _OTHER_POSTS == {v.value for v in ROUTED}
    assert Verb.WANT_QR not in ROUTED


def test_the_openapi_document_describes_each_routed_verb() -> None:
    paths = openapi_document(HttpConfig(), "test")["paths"]
    for verb in ROUTED:
        operation = paths[f"/v1/instances/{{id}}/{verb}"]["post"]
        assert verb.help.capitalize() in operation["summary"]


def test_wasup_ctl_has_a_subcommand_per_routed_verb() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    actions = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(actions.choices) == {
        "status",
        "qr",
        "screens",
        "webhooks",
        "top",
        "history",
        *(v.value for v in ROUTED),
    }
