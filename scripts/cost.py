#!/usr/bin/env python3
"""Cost estimate of one campaign on AWS, worked out from statemachine.asl.json and
infra/template.yaml, with the prices and assumptions stated below. Prints a table.

    python3 scripts/cost.py            # us-east-1 list prices as of 2026
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# List prices, us-east-1 (per unit).
PRICE_TRANSITION = 0.025 / 1000          # Step Functions Standard, per state transition
PRICE_LAMBDA_GBS_ARM = 0.0000133334      # Lambda arm64, per GB-second
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000  # Lambda, per request
PRICE_DDB_WRITE = 0.625 / 1_000_000      # DynamoDB on-demand, per write request unit
PRICE_DDB_READ = 0.125 / 1_000_000       # DynamoDB on-demand, per read request unit
PRICE_SQS = 0.50 / 1_000_000             # SQS FIFO (the status queue), per request (64 KiB chunk)

# A model-backed campaign: every agent on Amazon Bedrock, Amazon Nova Lite on demand
# (us-east-1 list prices per token), at a hosted model's pace (the bench's simulated model).
MODEL = "Amazon Nova Lite (amazon.nova-lite-v1:0)"
PRICE_MODEL_INPUT = 0.06 / 1_000_000     # per input token
PRICE_MODEL_OUTPUT = 0.24 / 1_000_000    # per output token
MODEL_INPUT_TOKENS = 250                 # per request: system prompt + brief + task, ~800 characters
MODEL_OUTPUT_TOKENS = {"copy": 300, "social": 250, "visual": 200}  # answers filling their limits
MODEL_REPAIR_RATE = 0.10                 # answers sent back once (the repair resends the answer)
MODEL_FIRST_TOKEN_S = 0.4
MODEL_TOKENS_PER_S = 40.0

# Assumptions (the built-in agents; a model-backed agent would dominate duration).
AVG_TASK_MS = 60          # billed duration of one Task invocation
AVG_API_MS = 40           # one API request
AVG_NOTIFIER_MS = 30      # one notifier batch
EVENTS = 5 + 3 * 4        # run: queued..completed (5); each agent generating..completed (4)
WS_SUBSCRIBERS = 1        # connections watching the run
API_CALLS = 3             # POST /campaigns, then two GETs by the client


AGENTS = ("copy", "social", "visual")


def walk(states, name, mode):
    """State transitions and Task invocations along the happy path from `name`. A Choice
    takes the branch whose StringEquals is `mode` (the execution mode, or inside the
    sequential Map the item's agent); a Map runs its processor once per agent."""
    transitions = tasks = 0
    while name:
        st = states[name]
        transitions += 1
        if st["Type"] == "Task":
            tasks += 1
        if st["Type"] == "Parallel":
            for b in st["Branches"]:
                t, k = walk(b["States"], b["StartAt"], mode)
                transitions += t
                tasks += k
        if st["Type"] == "Map":
            proc = st["ItemProcessor"]
            for agent in AGENTS:
                t, k = walk(proc["States"], proc["StartAt"], agent)
                transitions += t
                tasks += k
        if st["Type"] == "Choice":
            chosen = [c["Next"] for c in st["Choices"] if c.get("StringEquals") == mode]
            name = chosen[0] if chosen else st["Default"]
            continue
        name = None if st.get("End") else st.get("Next")
    return transitions, tasks


def memory_mb():
    text = (ROOT / "infra/template.yaml").read_text()
    m = re.search(r"Globals:\s+Function:(?:.|\n)*?MemorySize: (\d+)", text)
    return int(m.group(1))


def main():
    asl = json.loads((ROOT / "statemachine.asl.json").read_text())
    mem_gb = memory_mb() / 1024
    print(f"Lambda memory {memory_mb()} MB (template Globals), arm64; prices: us-east-1 list.\n")
    print("| mode | transitions | Lambda invocations | GB-s | DynamoDB WRU/RRU | SQS requests | cost per campaign | per 1,000 |")
    print("|---|---|---|---|---|---|---|---|")
    rows = [(mode, None) for mode in ("parallel", "sequential")] + [("parallel", MODEL)]
    for mode, model in rows:
        transitions, tasks = walk(asl["States"], asl["StartAt"], mode)
        notifier_calls = -(-EVENTS // 10)  # batches of up to 10 messages
        invocations = tasks + API_CALLS + notifier_calls
        task_s = tasks * AVG_TASK_MS / 1000
        model_cost = 0.0
        if model:
            # The three agent Tasks wait on the model instead of the built-in 60 ms.
            for out in MODEL_OUTPUT_TOKENS.values():
                answer_s = MODEL_FIRST_TOKEN_S + out / MODEL_TOKENS_PER_S
                task_s += (1 + MODEL_REPAIR_RATE) * answer_s - AVG_TASK_MS / 1000
                inputs = MODEL_INPUT_TOKENS + MODEL_REPAIR_RATE * (MODEL_INPUT_TOKENS + out + 60)
                outputs = (1 + MODEL_REPAIR_RATE) * out
                model_cost += inputs * PRICE_MODEL_INPUT + outputs * PRICE_MODEL_OUTPUT
        gbs = mem_gb * (task_s + (API_CALLS * AVG_API_MS + notifier_calls * AVG_NOTIFIER_MS) / 1000)
        # Every transition batch: one consistent GetItem of the run (<= 4 KB: 1 RRU) and a
        # transaction writing run + event (+ artifact): transactional writes cost 2 WRU/KB.
        # Assume 3 KB run item, 1 KB event, 6 KB artifact (the SVG preview dominates).
        # Plus one agent sample per agent call (a small PutItem: 1 WRU), for auto mode.
        writes = EVENTS * 2 * (3 + 1) + 3 * 2 * 6 + 3
        reads = EVENTS * 1 + tasks * 4 + API_CALLS * 4 + notifier_calls * WS_SUBSCRIBERS
        # Status events: sent in batches per transition batch (~1 request each), received
        # and deleted by the Lambda poller (~2 requests per batch).
        sqs = EVENTS + 2 * notifier_calls
        cost = (transitions * PRICE_TRANSITION + invocations * PRICE_LAMBDA_REQUEST
                + gbs * PRICE_LAMBDA_GBS_ARM + writes * PRICE_DDB_WRITE + reads * PRICE_DDB_READ
                + sqs * PRICE_SQS + model_cost)
        label = f"{mode}, every agent on {model}" if model else mode
        print(f"| {label} | {transitions} | {invocations} | {gbs:.3f} | {writes}/{reads} | {sqs} | ${cost:.6f} | ${cost * 1000:.2f} |")
        if model:
            print(f"\n(the model's own share: ${model_cost:.6f} per campaign)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
