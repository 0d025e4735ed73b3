// The token estimator against the measurement in bench/estimator: each
// corpus request is sent once through a limited location, and what the
// gateway reserved (its estimate + max_tokens 1) is compared with the
// o200k reference counts recorded in bench/estimator/results.json (no
// tokenizer needed here).  Prints whether the estimates are the recorded
// ones (results.md is current with the C code) and whether the error
// stays within what docs/estimator.md says.
//
//   node estimate_check.mjs URL
import fs from 'node:fs';

const [url] = process.argv.slice(2);
const dir = new URL('../../bench/estimator/', import.meta.url);
const recorded = JSON.parse(fs.readFileSync(new URL('results.json', dir)));

let same = true, sum = 0, under = 0;
for (const r of recorded) {
  const body = JSON.parse(fs.readFileSync(new URL(`corpus/${r.name}.json`, dir)));
  body.model = 'gpt-4o~usage_prompt=1,usage_completion=1';
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-case': r.name },
    body: JSON.stringify(body),
  });
  await res.text();
  const est = 100000000 - Number(res.headers.get('x-ratelimit-remaining-tokens')) - body.max_tokens;
  if (est !== r.est) {
    same = false;
    console.log(`${r.name}: estimate ${est}, recorded ${r.est}`);
  }
  const e = (est - r.ref) / r.ref;
  sum += e;
  under = Math.min(under, e);
}
const mean = sum / recorded.length;
console.log(`${recorded.length} cases, estimates as recorded: ${same}`);
console.log(`mean error between 0 and +20%: ${mean >= 0 && mean <= 0.2}`);
console.log(`worst under-estimate above -12%: ${under > -0.12}`);
