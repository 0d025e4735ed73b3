// The Anthropic SDK with extended thinking and a tool loop, against
// whatever provider the model routes to: the thinking comes back as
// thinking blocks (create and stream), and the assistant turn, thinking
// and tool use as they came, goes back with the tool's result.
//
//   node anthropic_thinking.mjs BASE_URL API_KEY MODEL
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

const tools = [{ name: 'get_weather', description: 'Weather of a city',
                 input_schema: { type: 'object', properties: { location: { type: 'string' } } } }];
const thinking = { type: 'enabled', budget_tokens: 2048 };
const question = { role: 'user', content: 'what is the weather in Paris?' };

function show(what, msg) {
  const kinds = msg.content.map((b) => b.type).join(',');
  const think = msg.content.find((b) => b.type === 'thinking');
  console.log(`${what}: [${kinds}] thinking: ${think ? JSON.stringify(think.thinking) : '-'}`
              + ` signed: ${think ? typeof think.signature === 'string' : '-'}`
              + ` (${msg.stop_reason}) ${msg.usage.output_tokens}`);
}

async function loop(what, first) {
  const use = first.content.find((b) => b.type === 'tool_use');
  const next = await client.messages.create({
    model, max_tokens: 4096, thinking, tools,
    messages: [question, { role: 'assistant', content: first.content },
               { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21C' }] }],
  });
  const text = next.content.find((b) => b.type === 'text');
  console.log(`${what} loop: ${text.text} (${next.stop_reason})`);
}

const msg = await client.messages.create({ model, max_tokens: 4096, thinking, tools, messages: [question] });
show('create', msg);
await loop('create', msg);

const stream = client.messages.stream({ model, max_tokens: 4096, thinking, tools, messages: [question] });
let thoughts = 0;
stream.on('thinking', () => { thoughts++; });
const final = await stream.finalMessage();
show('stream', final);
console.log(`stream thinking events: ${thoughts > 0}`);
await loop('stream', final);
