// The official SDKs' model discovery against the gateway: models.list and
// models.retrieve through the OpenAI door and the Anthropic door, and the
// typed error of a model the gateway does not serve.
//
//   node models.mjs BASE_URL API_KEY MODEL_ID
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const [base, apiKey, id] = process.argv.slice(2);

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0,
                            timeout: 10000 });
const ids = [];
for await (const m of openai.models.list()) {
  ids.push(`${m.id}/${m.owned_by}`);
}
console.log(`openai list: ${ids.join(' ')}`);

const one = await openai.models.retrieve(id);
console.log(`openai retrieve: ${one.id} ${one.object} ${one.owned_by}`);

try {
  await openai.models.retrieve('no-such-model');
  console.log('openai unknown: served?');
} catch (e) {
  console.log(`openai unknown: ${e.constructor.name} ${e.status} ${e.code}`);
}

const anthropic = new Anthropic({ baseURL: base, apiKey, maxRetries: 0,
                                  timeout: 10000 });
const names = [];
for await (const m of anthropic.models.list()) {
  names.push(`${m.id}/${m.type}/${m.display_name}`);
}
console.log(`anthropic list: ${names.join(' ')}`);

const info = await anthropic.models.retrieve(id);
console.log(`anthropic retrieve: ${info.id} ${info.type} ${info.created_at}`);

try {
  await anthropic.models.retrieve('no-such-model');
  console.log('anthropic unknown: served?');
} catch (e) {
  console.log(`anthropic unknown: ${e.constructor.name} ${e.status} ${e.error?.type} ${e.error?.error?.type}`);
}
