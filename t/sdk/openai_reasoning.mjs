// The OpenAI SDK with reasoning_effort and a tool loop, against whatever
// provider the model routes to: the reasoning comes back as
// reasoning_content (create and stream), and the assistant message, as
// the SDK returned it, goes back with the tool's result; the prompt
// cache's reads in the usage.
//
//   node openai_reasoning.mjs BASE_URL API_KEY MODEL
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
                 parameters: { type: 'object', properties: { location: { type: 'string' } } } } }];
const question = { role: 'user', content: 'what is the weather in Paris?' };

const first = await client.chat.completions.create({
  model, reasoning_effort: 'medium', tools, messages: [question],
});
const msg = first.choices[0].message;
console.log(`create: reasoning: ${JSON.stringify(msg.reasoning_content)} calls: ${msg.tool_calls.length}`
            + ` (${first.choices[0].finish_reason}) reasoning tokens: ${first.usage.completion_tokens_details.reasoning_tokens}`
            + ` cached: ${first.usage.prompt_tokens_details.cached_tokens}`);

const next = await client.chat.completions.create({
  model, reasoning_effort: 'medium', tools,
  messages: [question, msg, { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: '21C' }],
});
console.log(`loop: ${next.choices[0].message.content} (${next.choices[0].finish_reason})`);

const stream = await client.chat.completions.create({
  model, reasoning_effort: 'low', stream: true, stream_options: { include_usage: true },
  messages: [{ role: 'user', content: 'hi' }],
});
let reasoning = '', text = '', usage = null;
for await (const chunk of stream) {
  const d = chunk.choices[0]?.delta;
  if (d?.reasoning_content) reasoning += d.reasoning_content;
  if (d?.content) text += d.content;
  if (chunk.usage) usage = chunk.usage;
}
console.log(`stream: reasoning: ${JSON.stringify(reasoning)} text: ${text} reasoning tokens: ${usage.completion_tokens_details.reasoning_tokens}`);
