// The Anthropic SDK's messages.countTokens through the gateway, with the
// response header that says whether the gateway estimated the count.
//
//   node anthropic_count_tokens.mjs BASE_URL API_KEY MODEL
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

const { data, response } = await client.messages.countTokens({
  model, system: 'Be brief.',
  tools: [{ name: 'get_weather', description: 'Weather of a city',
            input_schema: { type: 'object', properties: { location: { type: 'string' } } } }],
  messages: [{ role: 'user', content: 'how many tokens is this?' }],
}).withResponse();

console.log(`count: ${data.input_tokens} estimate: ${response.headers.get('x-ai-token-estimate') || 'no'}`);
