#!/usr/bin/env python3
"""Runs the real SAM transform (PyPI aws-sam-translator) on infra/template.yaml offline and
writes the resulting CloudFormation template, so cfn-lint can check what CloudFormation
would actually receive. Any transform error fails with SAM's own message — the checks
`sam validate` makes, without credentials or the SAM CLI.

Usage: sam_transform.py TEMPLATE OUTPUT
"""

import json
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class OfflinePolicies:
    """Managed policy names resolved without calling IAM (as `sam validate` does offline)."""

    def load(self):
        return {}


def main() -> int:
    # The transform resolves pseudo parameters (AWS::Region) from a boto session.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    src, out = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # Local paths are what `sam build`/`sam deploy` upload; the transform only needs S3
    # locations in their place (what `sam validate` substitutes too).
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://bucket/{name}.zip"
        if res.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["DefinitionUri"] = {"Bucket": "bucket", "Key": f"{name}.asl.json"}
    try:
        result = transform(template, {}, OfflinePolicies(), feature_toggle=None, passthrough_metadata=False)
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"SAM transform error: {cause.message}", file=sys.stderr)
        return 1
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    count = len(result.get("Resources", {}))
    print(f"SAM transform: {src} -> {out} ({count} CloudFormation resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
