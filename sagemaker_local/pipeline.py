"""Run a SageMaker Pipeline definition on this machine (a local-testing tool): the same JSON that
`aws sagemaker create-pipeline` takes, step by step, as SageMaker would.

The SDK's own local pipelines (LocalPipelineSession) run Training, Processing, Condition and Fail steps only;
this runner covers what the retrain pipeline (deploy/pipeline.py) uses:

- Training and Processing: through the SDK's local mode (LocalSession), which runs the real image with
  docker-compose as SageMaker runs it, its S3 inputs and outputs on the S3 the session points at (moto);
- Lambda: a Python handler given for each function ARN, called in-process with the step's arguments;
- RegisterModel: CreateModelPackage on the SageMaker API given (moto);
- Condition (Equals, GreaterThan[OrEqualTo], LessThan[OrEqualTo], all of them must hold) and Fail.

Values are resolved as SageMaker resolves them: Parameters (defaults, overridden by the run's), Execution
variables, step properties (`Steps.Train.ModelArtifacts.S3ModelArtifacts`, `Outputs['name']`), `Std:Join`, and
`Std:JsonGet` on a processing step's property file. A step runs once every step it refers to has succeeded; the
steps of a condition's branch that was not taken do not run, nor does anything that needs them.

Selective execution, as SageMaker's (StartPipelineExecution's SelectiveExecutionConfig): only the selected steps
run; each step they need that was not selected is reused from a reference execution (its properties, as that
execution left them), and the steps after them that were not selected do not run. Re-running the gate after an
approval changed, or the rollout after it failed, costs no new training.
"""

from __future__ import annotations

import json
import operator
import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

Handler = Callable[[dict], dict]
STEP_REFERENCE = re.compile(r"^Steps\.([^.\[]+)")
PATH_PART = re.compile(r"\.?([A-Za-z0-9_]+)|\['([^']+)'\]|\[(\d+)\]")
DONE = ("Succeeded", "Reused")  # what a step needs of the steps it reads from
COMPARISONS = {
    "Equals": operator.eq,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}


class StepFailed(RuntimeError):
    pass


@dataclass
class StepRun:
    name: str
    type: str
    status: str = "NotRun"  # Succeeded, Failed, Reused (selective execution), or NotRun (a branch not taken...)
    properties: dict = field(default_factory=dict)
    failure: str = ""


@dataclass
class Execution:
    id: str
    status: str
    steps: dict[str, StepRun]
    failure: str = ""

    def succeeded(self) -> list[str]:
        return [name for name, step in self.steps.items() if step.status == "Succeeded"]


def flatten(steps: list[dict], branch: tuple[str, bool] | None = None) -> dict[str, tuple[dict, tuple | None]]:
    """Every step by name, with the (condition, outcome) whose branch holds it."""
    found: dict[str, tuple[dict, tuple | None]] = {}
    for step in steps:
        found[step["Name"]] = (step, branch)
        if step["Type"] == "Condition":
            found.update(flatten(step["Arguments"].get("IfSteps", []), (step["Name"], True)))
            found.update(flatten(step["Arguments"].get("ElseSteps", []), (step["Name"], False)))
    return found


def references(value: Any) -> set[str]:
    """The steps a step's arguments read from (not what its branches hold)."""
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str) and (match := STEP_REFERENCE.match(value["Get"])):
            return {match.group(1)}
        return set().union(*(references(item) for key, item in value.items() if key not in ("IfSteps", "ElseSteps")))
    if isinstance(value, list):
        return set().union(*(references(item) for item in value))
    return set()


def needs(step: dict) -> set[str]:
    """The steps that must have completed before `step` runs: those its arguments read, and its DependsOn."""
    return references(step.get("Arguments", {})) | set(step.get("DependsOn", []))


def walk(value: Any, path: str) -> Any:
    """`value` followed along `ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri`: a name indexes a
    list of named entries (OutputName) as SageMaker's property paths do."""
    for attribute, key, index in PATH_PART.findall(path):
        name = attribute or key
        if index:
            value = value[int(index)]
        elif isinstance(value, list):
            value = next(item for item in value if name in (item.get("OutputName"), item.get("ChannelName")))
        else:
            value = value[name]
    return value


class PipelineRunner:
    def __init__(self, *, local_session: Any, sagemaker: Any, s3: Any, lambdas: dict[str, Handler]):
        """local_session: a sagemaker.local.LocalSession; sagemaker, s3: boto3 clients (moto); lambdas: handler
        per function ARN."""
        self.local = local_session.sagemaker_client
        self.sagemaker = sagemaker
        self.s3 = s3
        self.lambdas = lambdas

    def run(
        self,
        definition: dict,
        parameters: dict | None = None,
        *,
        selected: Collection[str] | None = None,
        reference: Execution | None = None,
    ) -> Execution:
        """One execution; with `selected`, a selective one: those steps alone, what they need from `reference`."""
        execution_id = uuid.uuid4().hex[:12]
        values = {item["Name"]: item.get("DefaultValue") for item in definition.get("Parameters", [])}
        unknown = set(parameters or {}) - set(values)
        if unknown:
            raise ValueError(f"the pipeline has no parameter {', '.join(sorted(unknown))}")
        values.update(parameters or {})
        context = {"Parameters": values, "Execution": {"PipelineExecutionId": execution_id}, "Steps": {}}
        steps = flatten(definition["Steps"])
        runs = {name: StepRun(name, step["Type"]) for name, (step, _) in steps.items()}
        pending = list(steps) if selected is None else self._reuse(steps, selected, reference, runs, context)
        outcomes = {
            name: run.properties["Outcome"]
            for name, run in runs.items()
            if run.status == "Reused" and run.type == "Condition"
        }
        while pending:
            ready = [name for name in pending if self._ready(steps[name], runs, outcomes)]
            if not ready:
                break  # what is left waits for a branch not taken or a step that did not run
            name = ready[0]
            pending.remove(name)
            step, _ = steps[name]
            try:
                runs[name].properties = self._execute(step, context, execution_id)
            except StepFailed as failure:
                runs[name].status, runs[name].failure = "Failed", str(failure)
                return Execution(execution_id, "Failed", runs, failure=f"{name}: {failure}")
            runs[name].status = "Succeeded"
            context["Steps"][name] = runs[name].properties
            if step["Type"] == "Condition":
                outcomes[name] = runs[name].properties["Outcome"]
        return Execution(execution_id, "Succeeded", runs)

    @staticmethod
    def _ready(entry: tuple[dict, tuple | None], runs: dict[str, StepRun], outcomes: dict[str, bool]) -> bool:
        step, branch = entry
        if branch is not None and outcomes.get(branch[0]) is not branch[1]:
            return False
        return all(runs[name].status in DONE for name in needs(step))

    @staticmethod
    def _reuse(
        steps: dict, selected: Collection[str], reference: Execution | None, runs: dict[str, StepRun], context: dict
    ) -> list[str]:
        """The selected steps, in definition order, after every step they need (what they read, and the condition
        whose branch holds them) is taken from `reference` (ValueError naming a step that is not in the pipeline, or
        one needed that `reference` did not complete)."""
        unknown = set(selected) - set(steps)
        if unknown:
            raise ValueError(f"the pipeline has no step {', '.join(sorted(unknown))}")
        needed: set[str] = set()
        for name in selected:
            step, branch = steps[name]
            needed |= needs(step) | ({branch[0]} if branch else set())
        needed -= set(selected)
        for name in sorted(needed):
            source = reference.steps.get(name) if reference is not None else None
            if source is None or source.status not in DONE:
                raise ValueError(f"selected steps need {name}, which the reference execution did not complete")
            runs[name] = StepRun(name, source.type, "Reused", source.properties)
            context["Steps"][name] = source.properties
        return [name for name in steps if name in selected]

    # --- values ---------------------------------------------------------------------------------------------
    def resolve(self, value: Any, context: dict) -> Any:
        if isinstance(value, list):
            return [self.resolve(item, context) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self._get(value["Get"], context)
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return join["On"].join(str(self.resolve(item, context)) for item in join["Values"])
        if set(value) == {"Std:JsonGet"}:
            return self._json_get(value["Std:JsonGet"], context)
        return {key: self.resolve(item, context) for key, item in value.items()}

    @staticmethod
    def _get(path: str, context: dict) -> Any:
        scope, _, rest = path.partition(".")
        if scope == "Steps":
            step, _, rest = rest.partition(".")
            return walk(context["Steps"][step], rest)
        return walk(context[scope], rest)

    def _json_get(self, spec: dict, context: dict) -> Any:
        reference = spec["PropertyFile"]["Get"]  # Steps.<name>.PropertyFiles.<file>
        _, step, _, name = reference.split(".", 3)
        properties = context["Steps"][step]
        declared = next(item for item in properties["PropertyFiles"] if item["PropertyFileName"] == name)
        output = walk(properties, f"ProcessingOutputConfig.Outputs['{declared['OutputName']}'].S3Output.S3Uri")
        url = urlparse(f"{output.rstrip('/')}/{declared['FilePath']}")
        document = json.loads(self.s3.get_object(Bucket=url.netloc, Key=url.path.lstrip("/"))["Body"].read())
        return walk(document, spec["Path"])

    # --- steps ----------------------------------------------------------------------------------------------
    def _execute(self, step: dict, context: dict, execution_id: str) -> dict:
        kind = step["Type"]
        if kind == "Condition":
            return {"Outcome": all(self._holds(item, context) for item in step["Arguments"]["Conditions"])}
        arguments = self.resolve(step.get("Arguments", {}), context)
        job_name = f"pipelines-{execution_id}-{step['Name']}"[:63]
        if kind == "Training":
            arguments["ResourceConfig"]["InstanceType"] = "local"
            self._job(self.local.create_training_job, TrainingJobName=job_name, **arguments)
            return self.local.describe_training_job(job_name)
        if kind == "Processing":
            arguments["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "local"
            self._job(self.local.create_processing_job, ProcessingJobName=job_name, **arguments)
            return {**self.local.describe_processing_job(job_name), "PropertyFiles": step.get("PropertyFiles", [])}
        if kind == "Lambda":
            handler = self.lambdas.get(step["FunctionArn"])
            if handler is None:
                raise StepFailed(f"no local handler for Lambda function {step['FunctionArn']}")
            try:
                answer = handler(arguments)
            except Exception as error:  # a Lambda's error fails its step, whatever it is
                raise StepFailed(f"{type(error).__name__}: {error}") from error
            return {
                "OutputParameters": {
                    item["OutputName"]: answer[item["OutputName"]] for item in step["OutputParameters"]
                }
            }
        if kind == "RegisterModel":
            arguments = {key: value for key, value in arguments.items() if value not in ("None", {}, None)}
            return self.sagemaker.create_model_package(**arguments)
        if kind == "Fail":
            raise StepFailed(arguments.get("ErrorMessage", "failed"))
        raise StepFailed(f"step type {kind} is not run locally")

    @staticmethod
    def _job(create: Callable[..., Any], **request: Any) -> None:
        try:
            create(**request)
        except Exception as error:  # local mode raises whatever its container or docker-compose raised
            raise StepFailed(f"{type(error).__name__}: {error}") from error

    def _holds(self, condition: dict, context: dict) -> bool:
        compare = COMPARISONS.get(condition["Type"])
        if compare is None:
            raise StepFailed(f"condition {condition['Type']} is not evaluated locally")
        left, right = self.resolve(condition["LeftValue"], context), self.resolve(condition["RightValue"], context)
        return bool(compare(left, right))
