// Counts BPE tokens for `go run ./server/e2e/benchcmd`.
// Usage: node count.js FILE  (FILE: a JSON array of strings)
// Prints {"o200k_base":[...],"cl100k_base":[...]}: one count per string.
'use strict';

const fs = require('fs');
const o200k = require('gpt-tokenizer/cjs/encoding/o200k_base');
const cl100k = require('gpt-tokenizer/cjs/encoding/cl100k_base');

const texts = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = { o200k_base: [], cl100k_base: [] };
for (const t of texts) {
  out.o200k_base.push(o200k.countTokens(t));
  out.cl100k_base.push(cl100k.countTokens(t));
}
process.stdout.write(JSON.stringify(out));
