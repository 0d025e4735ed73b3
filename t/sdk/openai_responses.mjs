// The OpenAI SDK's Responses API against whatever provider the model
// routes to: create (plain), create with stream: true (the typed events),
// the SDK's stream helper (which rebuilds the response from the events
// and checks their order), a function tool round trip, structured output
// (text.format json_schema); for OpenAI targets also previous_response_id,
// retrieve and delete.
//
//   node openai_responses.mjs BASE_URL API_KEY MODEL
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

const plain = await client.responses.create({
  model, instructions: 'You are terse.', input: 'hello from the sdk',
  max_output_tokens: 100, metadata: { run: 'sdk' },
});
console.log(`plain: ${plain.output_text} (${plain.status})`);
console.log(`plain usage: ${plain.usage.input_tokens} ${plain.usage.output_tokens} ${plain.usage.total_tokens}`);

const stream = await client.responses.create({
  model, stream: true,
  input: [{ role: 'user', content: [{ type: 'input_text', text: 'stream me please' }] }],
});
let text = '', done = '', seq = -1, ordered = true, final = null;
const types = new Set();
for await (const ev of stream) {
  types.add(ev.type);
  if (ev.sequence_number !== seq + 1) ordered = false;
  seq = ev.sequence_number;
  if (ev.type === 'response.output_text.delta') text += ev.delta;
  if (ev.type === 'response.output_text.done') done = ev.text;
  if (ev.type === 'response.completed') final = ev.response;
}
console.log(`stream: ${text} (${final.status}) done=${done === text} ordered=${ordered}`);
console.log(`stream events: ${[...types].join(' ')}`);
console.log(`stream usage: ${final.usage.input_tokens} ${final.usage.output_tokens} ${final.usage.total_tokens}`);

const helper = client.responses.stream({ model, input: 'through the helper' });
const hfinal = await helper.finalResponse();
console.log(`helper: ${hfinal.output_text}`);

const tools = [{
  type: 'function', name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { location: { type: 'string' },
                unit: { type: 'string' } }, required: ['location', 'unit'],
                additionalProperties: false },
  strict: true,
}];
const input = [{ role: 'user', content: 'what is the weather in Paris?' }];
const ts = await client.responses.create({ model, tools, input, stream: true });
let args = '', call = null;
for await (const ev of ts) {
  if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
  if (ev.type === 'response.output_item.done' && ev.item.type === 'function_call') call = ev.item;
}
console.log(`tool: ${call.name} ${JSON.stringify(JSON.parse(args))} same=${args === call.arguments}`);
const after = await client.responses.create({
  model, tools,
  input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: 'sunny, 21C' }],
});
console.log(`tool result: ${after.output[0].type} ${after.status}`);

const so = await client.responses.create({
  model, input: 'answer in JSON',
  text: { format: { type: 'json_schema', name: 'answer', strict: true,
          schema: { type: 'object', properties: { answer: { type: 'string' } },
                    required: ['answer'], additionalProperties: false } } },
});
let parsed;
try { parsed = JSON.stringify(JSON.parse(so.output_text)); } catch { parsed = `(text) ${so.output_text}`; }
console.log(`structured: ${parsed}`);

if (model.startsWith('gpt')) {
  const next = await client.responses.create({ model, previous_response_id: plain.id, input: 'and again' });
  console.log(`previous: ${next.previous_response_id === plain.id} ${next.status}`);
  const got = await client.responses.retrieve(plain.id);
  console.log(`retrieve: ${got.id === plain.id}`);
  const del = await client.responses.delete(plain.id);
  console.log(`delete: ${del?.id === plain.id} ${del?.deleted}`);
}
