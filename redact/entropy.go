package redact

import (
	"math"
	"strings"
)

// shannon returns the Shannon entropy of s in bits per byte.
func shannon(s string) float64 {
	if len(s) == 0 {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// templateParts are substrings of explicit template, interpolation or
// format syntax: a value holding one is filled in elsewhere, and no token
// format's body can hold one (their alphabets have no '{', '$' or '<').
var templateParts = [...]string{"${", "{{", "}}", "$(", "#{", "%(", "<%", "%s", "&lt;", "&gt;"}

// placeholderParts are substrings that mark a documented example or a
// stand-in rather than a real secret.
var placeholderParts = [...]string{
	"xxxx", "example", "changeme", "change_me", "change-me", "placeholder", "your_", "your-", "yourtoken", "yourkey",
	"yourpassword", "dummy", "redacted", "...", "replace_me", "replaceme",
	"insert_", "notreal", "not_a_real", "not-a-real",
}

// placeholderExact are whole values that are never secrets.
var placeholderExact = map[string]bool{
	"password": true, "pass": true, "passwd": true, "pwd": true, "secret": true, "token": true, "changeme": true,
	"pw": true, "p": true, "x": true, "xxx": true, "none": true, "null": true, "nil": true, "true": true, "false": true,
	"undefined": true, "empty": true, "todo": true, "tbd": true, "n/a": true, "na": true, "mysecretpassword": true,
	"apikey": true, "guest": true, "api_key": true, "secretkey": true, "mypassword": true, "hunter2": true, "letmein": true,
}

// maxStandInLen is the longest key-context value that the stand-in checks of
// isPlaceholder (documentation words, masks, one repeated character) may
// reject. Stand-ins are typed by people and short: the longest among the own
// corpus's hard negatives is 24 characters ("xxxxxxxxxxxxxxxxxxxxxxxx",
// "your-client-secret-here"), the longest among Nosey Parker's generic
// negatives 15 ("xxxxxxxxxxxxxxx"). Generated credentials are longer (32 hex,
// 40 base64, …), and a long value that merely holds "EXAMPLE" or a run of
// one letter under a secret-named key is redacted: a cheap false positive,
// where keeping it on a guess would be a leak. Templates are always kept.
const maxStandInLen = 24

// isTemplate reports whether s is explicit template, interpolation or
// variable syntax ("${VAR}", "{{ .Values.x }}", "<token>", "$TOKEN",
// "%PASSWORD%", "{XAccessKey}", "@db.password@"): filled in elsewhere, never
// a value. It is the one body check that applies to every rule but blocks:
// a token format's alphabet cannot produce it.
func isTemplate(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == '$' || s[0] == '%' && len(s) > 1 && s[len(s)-1] == '%' {
		return true
	}
	if len(s) > 2 && (s[0] == '{' && s[len(s)-1] == '}' || s[0] == '@' && s[len(s)-1] == '@') && isTemplateName(s[1:len(s)-1]) {
		return true // {XAccessKey} (format strings), @db.password@ (Maven resource filtering)
	}
	for _, p := range templateParts {
		if strings.Contains(s, p) {
			return true
		}
	}
	// An angle-bracketed stand-in ("<password>", "<your-key", "key>"); a
	// lone '>' or '<' inside a long random value is one of its characters.
	return isAngleStandIn(s)
}

// isShortPassword reports whether b, shorter than the six characters that
// other values under a secret name need, is still a password when a
// password name holds it: three to five letters and digits, at least one of
// them a letter ("guest", "admin", "pw01"). Anything else that short after
// "password =" is code ("+new", ".$p[", "(char") or a number.
func isShortPassword(b []byte) bool {
	if len(b) < 3 || len(b) > 5 {
		return false
	}
	letter := false
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return letter
}

// isAngleStandIn reports whether s is an angle-bracketed stand-in
// ("<password>", "<your-key", "key>").
func isAngleStandIn(s string) bool {
	lt, gt := strings.IndexByte(s, '<'), strings.LastIndexByte(s, '>')
	return lt == 0 || gt == len(s)-1 && gt >= 0 || lt >= 0 && gt > lt
}

// isPlaceholder reports whether s looks like a template, documented example or
// stand-in value, whatever its length. Key-context rules call standIn, which
// bounds the stand-in part by maxStandInLen; prose (no key vouches for the
// value) calls isPlaceholder itself.
func isPlaceholder(s string) bool {
	if isTemplate(s) {
		return true
	}
	l := strings.ToLower(s)
	if placeholderExact[l] {
		return true
	}
	if isMasked(s) {
		return true
	}
	for _, p := range placeholderParts {
		if strings.Contains(l, p) {
			return true
		}
	}
	// Mostly one repeated character ("000000", "aaaaaa", "xxxxxxxxxxxxxxxx").
	// One run inside a longer value does not make it a stand-in: an
	// unencrypted OpenSSH key body always holds "AAAAAAAA".
	longest, _ := longestRun(s)
	return longest >= 6 && 2*longest >= len(s)
}

// standIn is the stand-in check of key-context values (a secret-named key,
// a password position, a URL query parameter): templates always, the
// documentation words, masks and runs of isPlaceholder only up to
// maxStandInLen characters.
func standIn(s string) bool {
	return isTemplate(s) || isMasked(s) || len(s) <= maxStandInLen && isPlaceholder(s)
}

// isMasked reports whether s holds a mask ("****", "####"): what a tool
// prints in place of a secret, at any length ("password=###### dbname=x").
func isMasked(s string) bool {
	return strings.Contains(s, "****") || strings.Contains(s, "####")
}

// longestRun returns the length of the longest run of one repeated byte in
// s and whether that run is all of s.
func longestRun(s string) (longest int, whole bool) {
	if s == "" {
		return 0, false
	}
	run, longest := 1, 1
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			run++
			longest = max(longest, run)
		} else {
			run = 1
		}
	}
	return longest, longest == len(s)
}

// isLongRun reports whether s is longer than maxStandInLen and one repeated
// letter or digit ("aaaa…a", "xxxx…x", "0000…0"). Under a secret-named key
// such a value is redacted: whether it is a stand-in or a test secret, the
// reader loses nothing, and no entropy floor or letters-only rule may keep
// it. Runs of punctuation are masks and rulers ("****", "===="), kept.
func isLongRun(s string) bool {
	if len(s) <= maxStandInLen || !isAlnumByte(s[0]) {
		return false
	}
	_, whole := longestRun(s)
	return whole
}

// chosenPasswords are whole values that isPlaceholder takes for stand-ins
// but that, in a value someone chose with no position to prove it a
// password (checkChosen: a JWT signing secret, a short bearer token; a key
// like passwordAuth), are values: ordinary words people set as passwords.
// The other stand-ins of placeholderExact and placeholderParts (the slot's
// own name, mypassword, your…, guest) stay stand-ins there. Where a position
// proves a password, no word is a stand-in (isPasswordRef).
var chosenPasswords = map[string]bool{"secret": true, "hunter2": true, "letmein": true}

// isPasswordStandIn is isPlaceholder for a chosen value (checkChosen,
// chosenValueOK, the password of HTTP Basic credentials): the same
// templates, references, masks and documentation words, but the words of
// chosenPasswords are values, and a constant's name ("SOME_PASSWORD",
// "DB_PASS") is a stand-in: it reads as the name of a variable, not as what
// someone typed.
func isPasswordStandIn(s string) bool {
	if isConstName(s) {
		return true
	}
	if chosenPasswords[strings.ToLower(s)] {
		return false
	}
	return standIn(s)
}

// isConstName reports whether s reads as the name of a constant or an
// environment variable: capitals, digits and at least one underscore,
// starting with a capital ("SOME_PASSWORD", "DB_PASS_2"). Capitals alone
// ("QWERTZUIOP") may be what someone typed.
func isConstName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' || strings.IndexByte(s, '_') < 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// sequenceStandIn reports whether a chosen value (a password) is mostly an
// alphabet or number sequence ("abcdef123456", "a1b2c3d4e5f6"). A person's
// password that merely ends in one ("abuser123456") is a value.
func sequenceStandIn(s string) bool {
	if !hasSequence(s) {
		return false
	}
	if hasInterleavedSequence(s) {
		return true
	}
	rest := 0
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && isAlnumByte(s[j]) && isAlnumByte(s[j-1]) && s[j] == s[j-1]+1 {
			j++
		}
		if j-i < 4 {
			rest += j - i
		}
		i = j
	}
	return rest <= 2
}

// hasSequence reports whether a value that no format vouches for (generic
// and keyword-context rules; provider prefixes are evidence enough) holds a
// documentation stand-in made of an
// alphabet or number sequence: six or more consecutive characters in order
// ("abcdefg", "1234567890", "ABCDEFGHIJKL") or four or more interleaved
// letter-digit steps ("a1b2c3d4", "d4c3b2a1"). In a random value of base-62
// characters either is about as likely as guessing the value.
func hasSequence(s string) bool {
	run := 1
	for i := 1; i < len(s); i++ {
		if isAlnumByte(s[i]) && isAlnumByte(s[i-1]) && s[i] == s[i-1]+1 {
			if run++; run >= 6 {
				return true
			}
		} else {
			run = 1
		}
	}
	return hasInterleavedSequence(s)
}

// hasInterleavedSequence reports whether s holds four or more interleaved
// letter-digit steps ("a1b2c3d4", "d4c3b2a1").
func hasInterleavedSequence(s string) bool {
	// s[i] and s[i+2] step by one in the same direction, alternating letters and digits.
	for dir := -1; dir <= 1; dir += 2 {
		steps := 0
		for i := 0; i+2 < len(s); i++ {
			a, b := s[i], s[i+2]
			if isAlnumByte(a) && isAlnumByte(b) && int(b)-int(a) == dir && isDigitByte(a) != isDigitByte(s[i+1]) {
				if steps++; steps >= 6 {
					return true
				}
			} else {
				steps = 0
			}
		}
	}
	return false
}

func isDigitByte(c byte) bool { return c >= '0' && c <= '9' }

func isAlnumByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isUUID reports whether s is a canonical UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// charClasses counts lower, upper, digit and other characters in s.
func charClasses(s string) (lower, upper, digit, other int) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower++
		case c >= 'A' && c <= 'Z':
			upper++
		case c >= '0' && c <= '9':
			digit++
		default:
			other++
		}
	}
	return
}

// entropyFloor is the minimum Shannon entropy a generic value of length n
// must have: close to the maximum for short values, capped for long ones.
func entropyFloor(n int) float64 {
	f := math.Log2(float64(n)) - 0.6
	if f > 3.3 {
		f = 3.3
	}
	return f
}

// safeValuePrefixes mark values that are hashes, digests or references.
var safeValuePrefixes = [...]string{
	"sha1-", "sha256-", "sha384-", "sha512-", "sha256:", "sha512:", "sha1:", "md5:", "md5-", "http://", "https://", "file:",
	"dir:", "url:", "./", "../", "/", "arn:", "projects/", "secret/", "secrets/", "kv/", "ref+", "vault:", "ssm:", "sm://", "op://",
	"awssm:", "azurekv:", "gcpsm:", "env:", "k8s:", "secretref:", "sops:", "classpath:", "urn:",
}

// genericValueOK applies the checks for a value found by a generic rule. strict
// is used for prose, where no key name vouches for the value.
func genericValueOK(s string, strict bool) bool {
	minLen := 8
	if strict {
		minLen = 16
	}
	if len(s) < minLen || !strict && standIn(s) || strict && isPlaceholder(s) || hasSequence(s) || isUUID(s) || isMarker(s) {
		return false
	}
	l := strings.ToLower(s)
	for _, p := range safeValuePrefixes {
		if strings.HasPrefix(l, p) {
			return false
		}
	}
	if strings.Contains(s, "://") || isSemver(s) {
		return false
	}
	lower, upper, digit, other := charClasses(s)
	letters := lower + upper
	if digit == 0 && other == 0 {
		// Letters only: words and identifiers unless long, mixed-case and random.
		if len(s) < 24 || lower == 0 || upper == 0 || shannon(s) < 4.2 {
			return false
		}
	}
	if letters == 0 && other == 0 && len(s) < 20 {
		return false // plain numbers: ports, ids, timestamps
	}
	if t := strings.Trim(s, ":;.,()[]{}<>"); t != s && isLetters([]byte(t)) {
		return false // a word in punctuation: sqlite's ":memory:"
	}
	if digit == 0 && isWordy(s) || isWordy(trimVersion(s)) {
		return false // words, or words with a version: "acme-artifacts-prod-v2"
	}
	if isPackageCoordinate(s) || isAlgorithmName(l) || strings.HasSuffix(s, "(") {
		return false // coordinates, algorithm names, code ("Buffer.from(")
	}
	if isDottedName(s) {
		return false
	}
	h := shannon(s)
	floor := entropyFloor(len(s))
	if strict {
		floor = math.Min(3.4, math.Log2(float64(len(s)))-0.3)
		if digit == 0 {
			return false
		}
	}
	return h >= floor
}

// isWordy reports whether s consists of lowercase words joined by separators
// ("payment-token-service", "my_secret_name").
func isWordy(s string) bool {
	parts := 0
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || r == '#' }) {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
		parts++
	}
	return parts >= 2
}

// algorithmNames are names of hash, cipher and signature algorithms: values
// of keys like password_hash or signing_key_alg, never secrets themselves.
var algorithmNames = map[string]bool{
	"argon2": true, "argon2id": true, "argon2i": true, "argon2d": true, "pbkdf2": true, "scrypt": true, "bcrypt": true,
	"sha1": true, "sha224": true, "sha256": true, "sha384": true, "sha512": true, "sha3-256": true, "sha3-512": true,
	"md5": true, "blake2b": true, "blake3": true, "hs256": true, "hs384": true, "hs512": true, "rs256": true, "rs384": true,
	"rs512": true, "es256": true, "es384": true, "es512": true, "ps256": true, "ps384": true, "ps512": true, "eddsa": true,
	"ed25519": true, "x25519": true, "aes128": true, "aes256": true, "aes-128-gcm": true, "aes-256-gcm": true,
	"aes-256-cbc": true, "chacha20": true, "chacha20-poly1305": true, "hmac-sha256": true, "hmac-sha512": true,
	"rsa2048": true, "rsa4096": true, "p-256": true, "p-384": true, "secp256k1": true, "secp256r1": true,
}

// isAlgorithmName reports whether the lowercase value l is an algorithm name.
func isAlgorithmName(l string) bool { return algorithmNames[l] }

// isPasswordName reports whether a secret name says password outright
// (password, passwd, pwd, passphrase, and the pass/pw short forms).
func isPasswordName(name string) bool {
	n := squashName(name)
	if !isSecretName(name) {
		return false
	}
	for _, w := range [...]string{"password", "passwd", "passphrase", "pwd"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return strings.HasSuffix(n, "pass") || strings.HasSuffix(n, "pw")
}

// passwordValueOK judges a value under a key named password (passwd, pwd,
// passphrase, …): a position that proves a password. The value there is
// written literally, so whatever word it is ("password", "open_sesame",
// "mypassword", "guest") it is the password; only what is syntactically a
// reference or no value is kept (isPasswordRef), and what names where the
// password is rather than holding it: a path, a URL, a secret-store
// reference (safeValuePrefixes), an algorithm name (password_hash: bcrypt).
//
// quoted says whether the value stood in quotes. An unquoted value after
// "=" or ":" may be code ("password = DB_PASSWORD", "password:
// config.db.password", "password = getenv("), where a constant's name, a
// dotted path or a call is a reference; in quotes the same text is a
// literal ("password \"SOME_PASSWORD\"" in a Gradle file is the password).
func passwordValueOK(s string, quoted bool) bool {
	if len(s) < 3 || len(s) > 200 || isPasswordRef(s) || isAlgorithmName(strings.ToLower(s)) {
		return false
	}
	l := strings.ToLower(s)
	for _, p := range safeValuePrefixes {
		if strings.HasPrefix(l, p) {
			return false
		}
	}
	if strings.Contains(s, "://") || strings.ContainsAny(s, "#/") && isWordy(s) {
		return false // a URL; a route, an anchor or a relative path ("cms/sites/passwords#edit", "#add-password")
	}
	return quoted || !isCodeRef(s) && !hasInterpolation(s)
}

// chosenValueOK judges a value under a key that names a password without
// being one ("passwordSecret", "passwordAuth": the name of a Secret, a
// switch): such a key proves no password, so the chosen-password checks
// apply. The value is kept when it is a placeholder, template, reference,
// path, URL, algorithm name, number, boolean, words joined by separators
// or shorter than six characters.
func chosenValueOK(s string) bool {
	if len(s) < 6 || len(s) > 200 || isPasswordStandIn(s) || sequenceStandIn(s) || isMarker(s) || isAlgorithmName(strings.ToLower(s)) {
		return false
	}
	l := strings.ToLower(s)
	for _, p := range safeValuePrefixes {
		if strings.HasPrefix(l, p) {
			return false
		}
	}
	if strings.Contains(s, "://") || strings.HasSuffix(s, "(") || strings.Contains(s, "#") && isWordy(s) {
		return false
	}
	_, _, d, _ := charClasses(s)
	if d == len(s) {
		return false // a number: a length, a port, a count
	}
	return !isWordy(s)
}

// hasInterpolation reports whether an unquoted value holds a variable
// ("super$ecret", "pre${X}"): where a value is unquoted after "=" (a shell,
// an env or Makefile, Perl, PHP), "$name" is expanded, so the text is not
// the password. In quotes the caller takes the value as written.
func hasInterpolation(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if c := s[i+1]; s[i] == '$' && (c == '_' || c == '{' || c == '(' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return true
		}
	}
	return false
}

// isPasswordRef reports whether s, the value in a position that proves a
// password (a URL's userinfo, a connection string's Password=, a command
// line's -p, a Gradle credentials password, a key named password), is not a
// literal password: a variable or template ("$X", "${X}", "%X%", "#{…}",
// "{{…}}", "<…>", "@x@", "{Name}"), a mask ("****", "######", "xxxxxx"),
// one of the words that mean no value ("null", "none", "true", …), or a
// marker of an earlier redaction. Everything else there is written as the
// password is, so it is one: the documentation words of placeholderExact
// and placeholderParts are not stand-ins in these positions.
func isPasswordRef(s string) bool {
	if isTemplate(s) || isPasswordMask(s) || isMarker(s) {
		return true
	}
	if len(s) > 1 && strings.IndexByte("^~", s[0]) >= 0 && isSemver(s[1:]) {
		return true // an npm version range under a package named like a password ("parse-passwd": "^1.0.0")
	}
	return noValueWords[strings.ToLower(s)]
}

// noValueWords are the literals that mean "no value" or a switch in the
// configuration languages a password key appears in (YAML, JSON, TOML, env).
var noValueWords = map[string]bool{
	"null": true, "nil": true, "none": true, "undefined": true, "~": true,
	"true": true, "false": true, "yes": true, "no": true, "on": true, "off": true,
}

// isPasswordMask reports whether s is what a tool or a writer prints in
// place of a password: a mask of any length ("****", "password=######
// dbname=…"), an elision ("abc..."), or a value made only of one masking
// character, three or more times ("xxxxxx", "XXX", "???", "•••").
func isPasswordMask(s string) bool {
	if isMasked(s) || strings.Contains(s, "...") {
		return true
	}
	if len(s) < 3 {
		return false
	}
	if strings.Trim(s, "•") == "" {
		return true
	}
	_, whole := longestRun(s)
	return whole && strings.IndexByte("*#xX?", s[0]) >= 0
}

// isCodeRef reports whether an unquoted value reads as code that refers to
// a password held elsewhere: a constant's name ("DB_PASSWORD"), a dotted
// path of identifiers ("config.db.password", "process.env.DB_PASS") or a
// call ("System.getenv("). Lower-case words joined by '_' ("open_sesame")
// are not: unquoted after "=" in an INI, env or properties file, such a
// value is the password itself.
func isCodeRef(s string) bool {
	if isConstName(s) || strings.HasSuffix(s, "(") {
		return true
	}
	if strings.IndexByte(s, '.') < 0 {
		return false
	}
	for _, p := range strings.Split(s, ".") {
		if p == "" || !(p[0] == '_' || p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z') {
			return false
		}
		for i := 0; i < len(p); i++ {
			if !isWordByte(p[i]) {
				return false
			}
		}
	}
	return true
}

// isPasswordSlot reports whether a key name proves that its value is a
// password: a secret name whose last word says so ("password",
// "db_password", "AdminPassword", "smtp_pass", "PGPASSWORD", "ldap_pw2").
// A name where another word follows ("passwordSecret", "passwordKey",
// "passwordAuth") names a Secret, a field or a switch that concerns a
// password, not the password itself: chosenValueOK judges its value.
func isPasswordSlot(name string) bool {
	if !isSecretName(name) {
		return false
	}
	n := strings.TrimRight(squashName(name), "0123456789")
	for _, w := range [...]string{"password", "passwd", "passphrase", "pwd", "pass", "pw"} {
		if strings.HasSuffix(n, w) {
			return true
		}
	}
	return false
}

// squashName lowercases name and drops '_', '-' and '.' ("DB_Pass-word" →
// "dbpassword").
func squashName(name string) string {
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '_' || c == '-' || c == '.':
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// isTokenName reports whether a secret name says token, API key, secret or
// password outright: under such a name a UUID is a credential (Heroku API
// keys, Postmark server tokens, Jenkins trigger tokens are UUIDs), while a
// UUID under a looser name (someKey) is taken for an identifier.
func isTokenName(name string) bool {
	n := squashName(name)
	for _, w := range [...]string{"token", "apikey", "secret", "password", "accesskey"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// isIdent reports whether s is a non-empty name of letters, digits, '_', '.'
// and '-' that starts with a letter.
func isIdent(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// isTemplateName reports whether s reads as the name in a template: an
// identifier with at most two digits ("XAccessKey", "db.password", "key2"),
// not a random string ("Zq7xP9mK2vL8").
func isTemplateName(s string) bool {
	_, _, d, _ := charClasses(s)
	return isIdent(s) && d <= 2
}

// trimVersion removes up to two version suffixes ("-v2", "_2024", ".3") from
// s; it returns "" when there is none.
func trimVersion(s string) string {
	t := s
	for range 2 {
		i := strings.LastIndexAny(t, "-_.")
		if i <= 0 {
			break
		}
		suf := strings.TrimPrefix(strings.TrimPrefix(t[i+1:], "v"), "V")
		if suf == "" || len(suf) > 4 || strings.Trim(suf, "0123456789") != "" {
			break
		}
		t = t[:i]
	}
	if t == s {
		return ""
	}
	return t
}

// isPackageCoordinate reports whether s is a Maven or Gradle coordinate
// ("org.apache.commons:commons-lang3:3.12.0", "com.acme:lib:jar:2.4.1-SNAPSHOT").
func isPackageCoordinate(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) > 5 {
		return false
	}
	for _, p := range parts[:len(parts)-1] {
		if !isIdent(p) {
			return false
		}
	}
	v := parts[len(parts)-1]
	if v == "" || v[0] < '0' || v[0] > '9' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !isWordByte(v[i]) && v[i] != '.' && v[i] != '-' {
			return false
		}
	}
	return strings.Contains(v, ".")
}

// isWebhookName reports whether a key names a webhook (whose URL path is the
// credential): slackWebhookUrl, acme.io/alerts-webhook, teams_hook.
func isWebhookName(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "webhook") || strings.HasSuffix(n, "hook") || strings.HasSuffix(n, "hookurl") || strings.HasSuffix(n, "hook_url") || strings.HasSuffix(n, "hook-url")
}

// webhookSecretPath returns where the path of an http(s) URL starts when
// one of its path or query segments looks random (the credential of a
// webhook), or -1.
func webhookSecretPath(v string) int {
	rest, ok := strings.CutPrefix(v, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(v, "http://"); !ok {
			return -1
		}
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return -1
	}
	start := len(v) - len(rest) + slash + 1
	for _, seg := range strings.FieldsFunc(v[start:], func(r rune) bool { return r == '/' || r == '?' || r == '&' || r == '=' || r == '#' }) {
		if len(seg) >= 16 && genericValueOK(seg, false) {
			return start
		}
	}
	return -1
}

// isDottedName reports whether s looks like a host name, package or property
// path ("db.internal.example", "com.acme.payments.Client").
func isDottedName(s string) bool {
	if strings.Count(s, ".") < 2 {
		return false
	}
	for _, p := range strings.Split(s, ".") {
		if p == "" {
			return false
		}
		_, _, d, o := charClasses(p)
		if d > 2 || o > 1 || o == 1 && !strings.ContainsAny(p, "-_") {
			return false // a name's part holds letters, few digits and at most one '-' or '_' ("e*6.aaTz.3A~FG4h" is no name)
		}
	}
	return true
}

// isSemver reports whether s looks like a version ("v1.2.3", "1.24.3-rc.1+build.5").
func isSemver(s string) bool {
	t := strings.TrimPrefix(s, "v")
	dots := 0
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		if t[i] == '.' {
			dots++
		}
		i++
	}
	return dots >= 2 && i > 0 && (i == len(t) || t[i] == '-' || t[i] == '+')
}

// secretNameExcludedSuffixes mark key names that talk about a secret without
// holding one (tokenUrl, secretName, passwordPolicy, keyId, …).
var secretNameExcludedSuffixes = [...]string{
	"url", "uri", "path", "file", "name", "names", "type", "id", "ids", "ref", "length", "policy", "version", "expiry",
	"expires", "expiresin", "expiresat", "ttl", "header", "field", "endpoint", "location", "count", "enabled", "required",
	"format", "mode", "kind", "size", "prefix", "hint", "label", "description", "rotation", "provider", "store", "manager",
	"method", "scheme", "flow", "strategy", "keys", "selector", "template", "source", "mount", "key_ref", "secretref",
	"publickey", "pubkey", "sortkey", "primarykey", "partitionkey", "foreignkey", "idempotencykey", "cachekey", "routingkey",
	"objectkey", "projectkey", "hotkey", "monkey", "keyword", "keywords", "author", "authors", "authority", "authorities",
	"author_name", "oauth", "authn", "authz", "authmethod", "authtype", "secretsmanager", "tokenizer", "sig", "signer",
	"reset", "changed", "lastchanged", "updatedat", "createdat", "bucket", "limit", "audience", "issuer", "scope", "scopes",
	"domain", "region", "host", "port", "user", "username", "email", "owner", "team", "namespace", "cluster",
	"dn", "binddn", "address", "addr", "bypass", "compass", "timeout", "pool", "poolsize", "retries",
}

// isSecretName reports whether a key name says that its value is a secret.
func isSecretName(name string) bool {
	n := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			n = append(n, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			n = append(n, c)
		}
	}
	s := string(n)
	for _, x := range [...]string{"page", "next", "cursor", "continuation"} {
		if strings.Contains(s, x) {
			return false
		}
	}
	if strings.Contains(s, "webhook") && !strings.HasSuffix(s, "id") && !strings.HasSuffix(s, "name") && !strings.HasSuffix(s, "enabled") {
		return true // the URL of a webhook is its credential
	}
	for _, suf := range secretNameExcludedSuffixes {
		if strings.HasSuffix(s, suf) {
			return false
		}
	}
	for _, w := range [...]string{"password", "passwd", "passphrase", "pwd", "secret", "token", "apikey", "accesskey",
		"authkey", "privatekey", "signingkey", "credential", "encryptionkey", "masterkey", "sessionkey"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	// Credentials named without "password": an LDAP bind, a DSN, a
	// connection string, a private part, short forms (dbpass, ldap_pw, creds).
	for _, w := range [...]string{"bindpw", "bindpass", "bindcredential", "dsn", "connectionstring", "connstring", "connstr"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	for _, suf := range [...]string{"key", "auth", "signature", "bind", "conn", "connection", "private"} {
		if strings.HasSuffix(s, suf) {
			return true
		}
	}
	for _, suf := range [...]string{"pw", "pass", "cred", "creds"} {
		if strings.HasSuffix(s, suf) && shortFormAtBoundary(name, s[:len(s)-len(suf)]) {
			return true
		}
	}
	return false
}

// shortFormAtBoundary reports whether a short form (pass, pw, cred) that
// ends a name stands as a word of its own: the whole name, after a
// separator or a change of case (smtp_pass, dbPass, LDAP-PW), or after one
// of the short words it is written glued to (dbpass, smtppass, rootpw). A
// longer word that merely ends in it is not one ("minipass", an npm
// package; "bypass" and "compass" are excluded outright). prefix is the
// squashed name before the short form.
func shortFormAtBoundary(name, prefix string) bool {
	if prefix == "" {
		return true
	}
	// The byte of name before the short form, found by walking back over
	// the short form's letters.
	k := len(strings.TrimRight(name, "0123456789"))
	i := k - (len(squashName(name[:k])) - len(prefix))
	if i <= 0 || i > len(name) {
		return true
	}
	prev, first := name[i-1], name[i]
	if prev == '_' || prev == '-' || prev == '.' || prev >= 'a' && prev <= 'z' && first >= 'A' && first <= 'Z' {
		return true
	}
	switch prefix {
	case "db", "smtp", "ldap", "admin", "root", "user", "bind", "mysql", "redis", "ftp", "mail", "sql", "pg", "sa", "app", "api",
		"svc", "vnc", "rdp", "ssh", "proxy", "wifi", "git", "npm", "repo", "login", "auth", "http", "basic", "my", "db1", "db2":
		return true
	}
	return false
}

// markerPrefix starts every replacement.
const markerPrefix = "[REDACTED:"

func isMarker(s string) bool { return strings.Contains(s, markerPrefix) }

// HoldsSequence reports whether s holds a documentation stand-in made of an
// alphabet or number sequence ("abcdef", "123456", "a1b2c3d4"), the values
// the generic rules keep on purpose. Reports use it to tell examples
// written with such stand-ins from examples with realistic values.
func HoldsSequence(s string) bool { return hasSequence(s) }
