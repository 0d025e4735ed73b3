// The official Anthropic SDK against the gateway: messages.create and
// messages.stream; prints text and usage.
//
//   node anthropic_messages.mjs BASE_URL API_KEY
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

const msg = await client.messages.create({
  model: 'claude-3-5-haiku-latest',
  max_tokens: 100,
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'hello from anthropic' }],
});
console.log(`create: ${msg.content[0].text} (${msg.stop_reason})`);
console.log(`create usage: ${msg.usage.input_tokens} ${msg.usage.output_tokens}`);

const stream = client.messages.stream({
  model: 'claude-3-5-haiku-latest',
  max_tokens: 100,
  messages: [{ role: 'user', content: 'stream this' }],
});
let deltas = 0;
stream.on('text', () => { deltas++; });
const final = await stream.finalMessage();
console.log(`stream: ${final.content[0].text} (${final.stop_reason}) deltas>1: ${deltas > 1}`);
console.log(`stream usage: ${final.usage.input_tokens} ${final.usage.output_tokens}`);
