// The Anthropic SDK against whatever provider the model routes to:
// messages.create and messages.stream.
//
//   node anthropic_providers.mjs BASE_URL API_KEY MODEL
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

const msg = await client.messages.create({
  model, max_tokens: 100, system: 'Be brief.',
  messages: [{ role: 'user', content: 'hello from anthropic' }],
});
console.log(`create: ${msg.content[0].text} (${msg.stop_reason}) ${msg.usage.input_tokens} ${msg.usage.output_tokens}`);

const stream = client.messages.stream({
  model, max_tokens: 100,
  messages: [{ role: 'user', content: 'stream this' }],
});
let deltas = 0;
stream.on('text', () => { deltas++; });
const final = await stream.finalMessage();
console.log(`stream: ${final.content[0].text} (${final.stop_reason}) deltas>1: ${deltas > 1} ${final.usage.output_tokens}`);

const tool = await client.messages.create({
  model, max_tokens: 100,
  tools: [{ name: 'get_weather', description: 'Weather of a city',
            input_schema: { type: 'object', properties: { location: { type: 'string' } } } }],
  messages: [{ role: 'user', content: 'what is the weather in Paris?' }],
});
const use = tool.content.find((b) => b.type === 'tool_use');
console.log(`tool: ${use.name} ${JSON.stringify(use.input)} (${tool.stop_reason})`);
