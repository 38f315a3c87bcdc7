"""Benchmark worker for vLLM: run in vLLM's own environment (it imports nothing from globmed_data).

    /path/to/vllm-env/bin/python vllm_worker.py request.json response.json

request.json: {"model", "engine": {LLM kwargs}, "loglikelihood": [[context, continuation], ...]} -> one summed
log-probability of the continuation's tokens per pair; or {"model", "generate": [prompt, ...],
"stop": [...], "max_tokens": n} -> one greedy reply per prompt.
"""

import json
import sys


def main(request_path: str, response_path: str) -> None:
    from vllm import LLM, SamplingParams

    with open(request_path, encoding="utf-8") as f:
        job = json.load(f)
    llm = LLM(model=job["model"], **job.get("engine", {}))
    if "generate" in job:
        params = SamplingParams(temperature=0.0, max_tokens=job["max_tokens"], stop=job["stop"] or None)
        outputs = llm.generate(job["generate"], params, use_tqdm=False)
        result = [o.outputs[0].text if o.outputs else "" for o in outputs]
    else:
        tokenizer = llm.get_tokenizer()
        prompts, starts = [], []
        for context, continuation in job["loglikelihood"]:
            whole = tokenizer.encode(context + continuation)
            starts.append(len(tokenizer.encode(context)))
            prompts.append({"prompt_token_ids": whole})
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outputs = llm.generate(prompts, params, use_tqdm=False)
        result = []
        for out, start, prompt in zip(outputs, starts, prompts, strict=True):
            ids = prompt["prompt_token_ids"]
            result.append(sum(out.prompt_logprobs[i][ids[i]].logprob for i in range(start, len(ids))))
    with open(response_path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
