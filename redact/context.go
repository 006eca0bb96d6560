package redact

import "strings"

// The generic context layer (rule generic-context): a credential-shaped
// value next to a credential word, in whatever shape it is written — a
// key/value of YAML, JSON, env files, properties, TOML, HCL or INI; a shell
// export or flag (--api-key V); an HTTP header (X-Acme-Key: V,
// Authorization: Token V); a connection string (;ApiKey=V;); a code
// assignment (apiKey = "V", self.api_key = 'V'); a Markdown table row
// (| ACME_TOKEN | V |); a vendor-named key written any way (acmeKey,
// ACME_SECRET, acme-token, acme.secret, x-acme-key, acmeSECRET V,
// acme-PRIVATE-key-V). Unlike generic-secret it does not need ':' or '=',
// and it judges the value by its shape (length, alphabet, entropy for its
// alphabet) rather than by the documentation-sequence checks, so a vendor's
// key that no rule names is found whatever its vendor.

// contextWords are the credential words the layer starts from (keywords of
// the rule); a name must hold one as a word of its own (see credWordAt).
var contextWords = []string{"key", "token", "secret", "password", "passwd", "pwd", "credential", "access", "private", "auth", "apikey", "tkn"}

// credSegments are the words that may follow a credential word inside one
// name and keep it a credential name ("private_key", "SECRET-TOKEN",
// "access token").
var credSegments = map[string]bool{"key": true, "token": true, "secret": true, "password": true, "passwd": true, "pwd": true,
	"credential": true, "credentials": true, "access": true, "private": true, "auth": true, "apikey": true, "api": true, "tkn": true,
	"secretkey": true, "accesskey": true, "privatekey": true, "secrettoken": true, "accesstoken": true, "authtoken": true, "apitoken": true, "privatetoken": true,
	"value": true, "sid": true, "pat": true}

// isCredSegment reports whether w, ASCII letters, is one of credSegments in
// any case, without allocating.
func isCredSegment(w []byte) bool {
	var buf [16]byte
	if len(w) > len(buf) {
		return false // longer than any credential segment
	}
	for i, c := range w {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return credSegments[string(buf[:len(w)])]
}

// nonCredSuffixes end names that talk about a credential without holding
// one (a key's id, a token's URL, a secret's name, a public key).
var nonCredSuffixes = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range secretNameExcludedSuffixes {
		m[s] = true
	}
	for _, s := range [...]string{"public", "pub", "fingerprint", "hash", "algorithm", "alg", "usage", "level", "control", "denied", "granted",
		"log", "logs", "mode", "modes", "list", "rights", "role", "roles", "rule", "rules", "right", "permissions", "grant", "point", "points",
		"expiration", "lifetime", "duration", "refresh", "request", "response", "status", "state", "error", "errors", "code", "message",
		"date", "time", "timestamp", "class", "schema", "index", "number", "board", "word", "words", "note", "notes", "ring", "chain", "pair", "pairs",
		"env", "var", "variable", "arn", "vault", "manager", "service", "server", "client", "config", "settings", "option", "options"} {
		m[s] = true
	}
	return m
}()

// findContext is the matcher of generic-context: from each keyword hit it
// reads the name around the credential word, the separator and the value,
// in the shape of FindAllSubmatchIndex for groups (name, secret).
func (r *Redactor) findContext(text []byte, hits []int) [][]int {
	var out [][]int
	lastEnd := -1
	for i := 0; i+1 < len(hits); i += 2 {
		if !r.kwContext[hits[i]] {
			continue
		}
		kw := r.m.keywords[hits[i]]
		end := hits[i+1]
		start := end - len(kw)
		if start < lastEnd {
			continue
		}
		if m := parseContext(text, start, end); m != nil {
			out = append(out, m)
			lastEnd = m[1]
		}
	}
	return out
}

var contextWordSet = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range contextWords {
		m[w] = true
	}
	return m
}()

// credWordAt reports whether the credential word at text[ks:ke] is a word of
// its own in the name: at a boundary of the name (start, '_', '-', '.', '/',
// a blank) or a change of case (acmeKey, acmeSECRET), or the end of a
// lower-case name that ends in it (acmekey), and not part of a longer word
// (keyboard, tokenizer, secretary, accessible).
func credWordAt(text []byte, ks, ke int) bool {
	// After: the end of the name, a separator, or a change of case.
	if ke < len(text) {
		c := text[ke]
		lastUpper := text[ke-1] >= 'A' && text[ke-1] <= 'Z'
		switch {
		case c >= 'a' && c <= 'z':
			if lastUpper {
				return false // SECRETary? only an upper-case word may end here
			}
			// lower after lower: "keyboard", unless a credential compound
			// follows ("secretkey", "privatekey", "accesstoken").
			if !hasCredPrefix(text[ke:]) {
				return false
			}
		case c >= 'A' && c <= 'Z':
			if !lastUpper {
				break // acmeKeyId: camel boundary
			}
			if !hasCredPrefix(text[ke:]) {
				return false // TOKENIZER
			}
		}
	}
	// Before: a boundary, a change of case, or a lower-case vendor word
	// glued to it ("adobekey", "boostnote_token").
	return true
}

// hasCredPrefix reports whether b starts with a credential word (any case).
func hasCredPrefix(b []byte) bool {
	for _, w := range contextWords {
		if len(b) >= len(w) && equalFoldLower(b[:len(w)], w) {
			return true
		}
	}
	return false
}

// nameSegments splits a name into lower-case words at '_', '-', '.', '/',
// blanks and changes of case.
func nameSegments(name []byte) []string {
	var segs []string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			segs = append(segs, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for i, c := range name {
		switch {
		case c == '_' || c == '-' || c == '.' || c == '/' || c == ' ' || c == '\t' || c == ':':
			flush()
		case c >= 'A' && c <= 'Z' && i > 0 && name[i-1] >= 'a' && name[i-1] <= 'z':
			flush()
			cur = append(cur, c)
		default:
			cur = append(cur, c)
		}
	}
	flush()
	return segs
}

// nameWord returns the next word of name from i on, [start, end): up to a
// separator or a change from lower to upper case (nameSegments' words);
// start is len(name) when no word is left.
func nameWord(name []byte, i int) (start, end int) {
	for i < len(name) && isSegmentSep(name[i]) {
		i++
	}
	if i == len(name) {
		return i, i
	}
	j := i + 1
	for j < len(name) && !isSegmentSep(name[j]) && !(name[j] >= 'A' && name[j] <= 'Z' && name[j-1] >= 'a' && name[j-1] <= 'z') {
		j++
	}
	return i, j
}

// credNameOK reports whether a name may hold a credential as generic-context
// reads it: it has a word, its last word (or last two, joined) is none of
// nonCredSuffixes (keyId, tokenUrl, secretName), and no word says public or
// a page position (public_key, page_token). The words are those of
// nameSegments, read in place without allocating (the walk of a page
// calls this for every credential word of every string).
func credNameOK(name []byte) bool {
	var prev, cur [32]byte
	np, nc, n := 0, 0, 0
	for i := 0; i <= len(name); {
		var j int
		i, j = nameWord(name, i)
		if i == len(name) {
			break
		}
		copy(prev[:], cur[:nc])
		np = nc
		nc = 0
		for _, c := range name[i:j] {
			if nc == len(cur) {
				break
			}
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			cur[nc] = c
			nc++
		}
		switch string(cur[:nc]) {
		case "public", "pub", "page", "next", "cursor", "continuation", "pagination":
			return false // a public key; a page token is a position, not a credential
		}
		n++
		i = j
	}
	if n == 0 {
		return false
	}
	if nonCredSuffixes[string(cur[:nc])] {
		return false
	}
	if np > 0 && np+nc <= len(prev) {
		var both [64]byte
		copy(both[:], prev[:np])
		copy(both[np:], cur[:nc])
		return !nonCredSuffixes[string(both[:np+nc])]
	}
	return true
}

// parseContext reads NAME SEP VALUE around the credential word at
// text[ks:ke]. NAME runs over name bytes on both sides, and on the right
// over further credential words, also after blanks ("access token"); SEP is
// ':', '=', ':=', '=>', '|' (a table cell), blanks, or a '-', '.' or '_'
// right after a credential word (acme-SECRET-V); VALUE is judged by
// contextValueOK.
func parseContext(text []byte, ks, ke int) []int {
	if !credWordAt(text, ks, ke) {
		return nil
	}
	ns := ks
	for ns > 0 && (isNameByte(text[ns-1]) || text[ns-1] == '/') {
		ns--
	}
	// The credential part of the name: the word and the credential words
	// that follow it, joined by nothing, a separator or blanks.
	ce := ke
	for {
		j := ce
		for j < len(text) && j-ce < 2 && (text[j] == '_' || text[j] == '-' || text[j] == '.' || text[j] == ' ') {
			j++
		}
		k := j
		for k < len(text) && (text[k] >= 'a' && text[k] <= 'z' || text[k] >= 'A' && text[k] <= 'Z') {
			k++
		}
		if k == j || !isCredSegment(text[j:k]) {
			break
		}
		ce = k
	}
	// The whole name as written: name bytes after the credential part.
	ne := ce
	for ne < len(text) && isNameByte(text[ne]) {
		ne++
	}
	name := text[ns:ne]
	if v := contextAfter(text, ns, ne, name); v != nil {
		return v
	}
	// Glued: acme-SECRET-V, acme_key.V: the value follows the credential
	// part after one separator.
	if ce < len(text) && (text[ce] == '-' || text[ce] == '.' || text[ce] == '_') && ce > ke-len("key") && valueNear(text, ce+1) {
		return contextValue(text, ns, ce, ce+1, text[ns:ce], false)
	}
	return nil
}

// contextAfter reads the separator after a whole name and the value.
func contextAfter(text []byte, ns, ne int, name []byte) []int {
	if !valueNear(text, ne) {
		return nil // no run of 16 value bytes within reach: nothing to judge
	}
	if !credNameOK(name) {
		return nil
	}
	i := skipQuote(text, ne)
	if i < len(text) && text[i] == ']' { // INI/TOML table or array: not a value
		return nil
	}
	j := skipBlanks(text, i)
	sep := false
	switch {
	case j+1 < len(text) && (text[j] == ':' && text[j+1] == '=' || text[j] == '=' && text[j+1] == '>' || text[j] == '-' && text[j+1] == '>'):
		j += 2
		sep = true
	case j < len(text) && (text[j] == ':' || text[j] == '=' || text[j] == '|'):
		j++
		sep = true
	case i > ne && j < len(text) && text[j] == ',':
		// A quoted name, a comma and a quoted value: a default in code
		// (os.environ.get('ACME_SECRET_KEY', 'V'), getenv("ACME_TOKEN", "V")).
		if k := skipBlanks(text, j+1); k >= len(text) || text[k] != '"' && text[k] != '\'' {
			return nil
		}
		j++
		sep = true
	case j > i:
		// Blanks alone: "acme token V", "--api-key V", "Authorization Token V".
	default:
		return nil
	}
	j = skipBlanks(text, j)
	if sep && j < len(text) && (text[j] == '|' || text[j] == '>') && j+1 < len(text) && (text[j+1] == '\n' || text[j+1] == '-') {
		return nil // a YAML block scalar: prose follows, judged by other rules
	}
	// An HTTP authorization scheme before the credential.
	for _, sch := range [...]string{"bearer ", "token ", "basic ", "apikey ", "key "} {
		if len(text)-j > len(sch) && equalFoldLower(text[j:j+len(sch)], sch) {
			j = skipBlanks(text, j+len(sch))
			break
		}
	}
	return contextValue(text, ns, ne, j, name, true)
}

// contextValue reads the value at i (quoted or not) and judges it.
func contextValue(text []byte, ns, ne, i int, name []byte, named bool) []int {
	q := byte(0)
	if i < len(text) && (text[i] == '"' || text[i] == '\'' || text[i] == '`') {
		q = text[i]
		i++
	} else if i+1 < len(text) && text[i] == '\\' && (text[i+1] == '"' || text[i+1] == '\'') {
		q = text[i+1]
		i += 2
	}
	ve := i
	for ve < len(text) && ve-i < 512 && isContextValueByte(text[ve]) {
		ve++
	}
	// Trailing punctuation of prose or code ends the value.
	for ve > i && strings.IndexByte(".,;:)]}", text[ve-1]) >= 0 {
		ve--
	}
	if q == 0 && ve < len(text) && (isWordByte(text[ve]) || text[ve] == '@' || text[ve] == ':' && ve+2 < len(text) && text[ve+1] == '/') {
		return nil // the value runs on into something else (a URL, an address)
	}
	if q != 0 && ve < len(text) && text[ve] != q && text[ve] != '\\' {
		// A quoted literal directly under a strong name may hold any
		// printable character but a blank ('wwf*2#86t64!…', a Django
		// key); elsewhere a quoted string that is not one token is prose.
		k := ve
		for k < len(text) && k-i < 512 && text[k] > ' ' && text[k] < 0x7f && text[k] != '"' && text[k] != '\'' && text[k] != '`' && text[k] != '\\' {
			k++
		}
		if k >= len(text) || text[k] != q || !isAlnumByte(text[i]) || !isAlnumByte(text[k-1]) ||
			!strongContext(text, ns, ne, i) || isPasswordRef(string(text[i:k])) {
			// Not closed by its quote; code or prose between two string
			// literals (",rememberMeLabel:"); weak context; a reference
			// ('$X', '%X%', …).
			return nil
		}
		ve = k
	}
	v := string(text[i:ve])
	if !contextValueOK(v, name, strongContext(text, ns, ne, i)) {
		return nil
	}
	if !named {
		// Glued to the name (acme-SECRET-V): a value that starts with a
		// word and a dash continues the name ("vault-secret-reader-7d9f…",
		// a pod's name), it is no credential.
		if strings.IndexByte(v, '/') >= 0 {
			return nil // a path: ".../token-service/tree/<commit>/"
		}
		if k := strings.IndexAny(v, "-_."); k > 0 && isLetters(text[i:i+k]) {
			return nil
		}
	}
	if len(name) == 3 && equalFoldLower(name, "key") && attrFollows(text, ve, "value") {
		return nil // <add key="NAME" value="…">: the key attribute names a setting
	}
	return []int{ns, ve, ns, ne, i, ve}
}

// valueNear reports whether a run of 16 or more value bytes starts within
// 24 bytes after i (past the separator, blanks, quotes and a scheme word):
// the cheap test that spares most names the word analysis.
func valueNear(text []byte, i int) bool {
	end := min(len(text), i+24+16)
	run, marked := 0, false
	for k := i; k < end; k++ {
		c := text[k]
		if isContextValueByte(c) {
			run++
			// A credential holds a digit or a capital (contextValueOK):
			// paths and slugs of lower-case words do not need the analysis.
			marked = marked || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z'
			if run >= 16 && marked || run >= 20 {
				return true
			}
		} else {
			run, marked = 0, false
		}
	}
	// A quoted literal of other printable characters ('wwf*2#86t64!…'),
	// which contextValue takes whole under a strong name.
	for k := i; k < min(len(text), i+24); k++ {
		if c := text[k]; c == '"' || c == '\'' {
			n := 0
			for m := k + 1; m < len(text) && text[m] > ' ' && text[m] < 0x7f && text[m] != c; m++ {
				n++
			}
			if n >= 16 {
				return true
			}
		}
	}
	return false
}

func isContextValueByte(c byte) bool { return contextValueBytes[c] }

// contextValueBytes marks the bytes of a context value: letters, digits
// and +/=_-.~ (a constant table, built once).
var contextValueBytes = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		t[c] = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("+/=_-.~", b) >= 0
	}
	return t
}()

// contextValueOK reports whether v is credential-shaped: 16 to 512
// characters of a token alphabet, not a reference, path, version, word
// list or number, with letters and digits mixed (or mixed-case letters
// that do not read as words), no run of one character over half of it,
// and the entropy its alphabet gives a random string of its length.
// strong says the value stands directly under a name that names a
// credential (strongContext): there a documentation sequence of 20
// characters or more does not veto it (sequenceVouched), since hiding a
// stand-in costs the reader nothing and missing a key costs everything, and
// 20 digits or more, letters of one case and a UUID pass too.
func contextValueOK(v string, name []byte, strong bool) bool {
	if len(v) < 16 || len(v) > 512 {
		return false
	}
	if isTemplate(v) || isMasked(v) || isMarker(v) || isSemver(v) || isDottedName(v) || isPackageCoordinate(v) {
		return false
	}
	l := strings.ToLower(v)
	for _, p := range safeValuePrefixes {
		if strings.HasPrefix(l, p) {
			return false
		}
	}
	for _, p := range [...]string{"example", "your", "placeholder", "changeme", "redacted", "xxxxxx", "dummy", "sample", "insert", "replace"} {
		if strings.Contains(l, p) {
			return false
		}
	}
	if longest, _ := longestRun(v); 2*longest > len(v) {
		return false
	}
	seq := hasSequence(v)
	if seq && !(strong && len(v) >= 20 && sequenceVouched(v) && !isLicenseName(name)) {
		// A documentation stand-in ("abcdef123456…", "a1b2c3d4…"): six
		// characters in order are as unlikely in a random value as
		// guessing it (the hard negatives of TestKeyContextFalsePositives).
		return false
	}
	lower, upper, digit, other := charClasses(v)
	letters := lower + upper
	switch {
	case letters == 0:
		// Numbers: ids, timestamps, phone numbers; directly under a name
		// that names a credential, 20 digits or more are the credential.
		if !strong || len(v) < 20 || other > 0 {
			return false
		}
	case digit == 0 && other == 0:
		// Letters only: mixed case that does not split into words; directly
		// under a name that names a credential, one case too.
		if len(v) < 20 || !strong && (lower == 0 || upper == 0 || !gluedBodyOK(v)) {
			return false
		}
	case digit == 0:
		if isWordy(v) || isIdent(v) {
			return false // words joined by separators, an identifier
		}
	}
	if isUUID(v) && !uuidCredName(name) && (!strong || isLicenseName(name)) {
		// A UUID is a credential under a name that says key, token, secret
		// or password, or directly under access or private in text (a
		// strong context); a license key's UUID is an entitlement id.
		return false
	}
	if isWordy(trimVersion(v)) {
		return false
	}
	// Entropy for the alphabet: a random hex string of n characters has
	// about min(4, log2 n) bits per character, base-62 about min(5.95,
	// log2 n); ask for a margin below that.
	h := shannon(v)
	floor := 3.0
	switch {
	case seq || letters == 0:
		// A stand-in under a strong name ("abcdef" repeated), or digits
		// (at most log2(10) bits each): the name vouches, the value only
		// has to be no run of a few characters.
		floor = 2.5
	case isHexString(v):
		floor = 2.8
	}
	return h >= floor
}

// sequenceVouched reports whether a value holding a documentation
// sequence is a credential all the same directly under a strong name: it
// is mostly sequence (fewer than 12 letters and digits left over by
// sequenceResidue: a stand-in, and hiding it costs nothing), or what is
// left holds a random run of 20 or more (a key padded with a sequence). A
// real-looking value with a short run overwritten
// ("Qm7aR2+kF+9XyLpTzWvNs1234567890", which Nosey Parker writes as a
// negative) is neither.
func sequenceVouched(v string) bool {
	r, longest := sequenceResidue(v)
	return r < 12 || longest >= 20
}

// strongCredSegments are the last words of a name that name a credential
// strongly: the name holds one, not only talks about one ("access",
// "private", "auth", "credential" alone say less: an access level, a
// private field, an auth mode).
var strongCredSegments = map[string]bool{"password": true, "passwd": true, "secret": true, "token": true, "key": true,
	"apikey": true, "accesskey": true, "privatekey": true, "secretkey": true, "clientsecret": true,
	"apitoken": true, "authtoken": true, "accesstoken": true, "secrettoken": true, "privatetoken": true}

// strongContext reports whether the value at text[vs:] stands directly
// under the name text[ns:ne] and that name names a credential strongly: its
// last word is one of strongCredSegments (password, secret, token, api_key,
// private_key, client_secret, auth_token, <vendor>_key, <vendor>-token,
// <vendor>.secret, acmeSECRET, …) or, in text, access or private
// (contextStrongSegment); and between name and value stands an assignment
// (':', '=', ':=', '=>', a table's '|'), the comma of a default after a
// quoted name (getenv("ACME_TOKEN", "V")), one separator gluing the value
// to the name (acme-SECRET-V), or only blanks and quotes after a flag
// (--api-key V), after a name that is one identifier of two or more words
// (ACME_TOKEN V), or, blanks only, after a credential phrase ("acme SECRET
// V", "the acme access token V"). A word that is no credential word between
// the phrase and the value ("acme SECRET rotation V") is weak context,
// where the documentation-sequence gate stays.
func strongContext(text []byte, ns, ne, vs int) bool {
	if ns < 0 || ne > vs || vs > len(text) || ne <= ns {
		return false
	}
	name := text[ns:ne]
	ls := lastSegment(name)
	if ls < 0 || !isStrongSegment(name[ls:]) && !contextStrongSegment(name[ls:]) {
		return false
	}
	if vs == ne+1 && (text[ne] == '-' || text[ne] == '_' || text[ne] == '.') {
		// Glued to the name by one separator (acme-SECRET-V, acmeTOKEN-V,
		// acme.key.V): the credential word is the last word before the
		// value; contextValue has already turned away values that continue
		// the name (a word and a dash, a path).
		return true
	}
	sep := false
	for _, c := range text[ne:vs] {
		switch c {
		case ':', '=', '|', '>':
			sep = true
		case ',':
			// After a quoted name, a default's comma (getenv("ACME_TOKEN", "V")).
			if text[ne] != '"' && text[ne] != '\'' {
				return false
			}
			sep = true
		case ' ', '\t', '"', '\'', '`', '\\':
		default:
			// A scheme word ("Bearer ", "Token ") may stand after the
			// separator; anything else before it is no assignment.
			if !sep {
				return false
			}
		}
	}
	if sep {
		return true
	}
	if ne == vs {
		return false
	}
	if name[0] == '-' {
		return true // a flag: --api-key V
	}
	words, prose := false, false
	for i, c := range name {
		prose = prose || c == ' ' || c == '\t'
		words = words || i < ls && isAlnumByte(c)
	}
	if !prose && words {
		return true // one identifier of two or more words: ACME_TOKEN V
	}
	// A credential phrase directly before the value, with only blanks
	// between ("acme SECRET V", "acme access token V", "the API key V"):
	// the phrase says what the value is.
	return credPhrase(name) && vs-ne <= 8 && onlyBlanks(text[ne:vs])
}

// credPhrase reports whether name is made of credential words only
// (credSegments: "SECRET", "secret key", "access token"), as parseContext
// reads a credential part.
func credPhrase(name []byte) bool {
	n := 0
	for i := 0; i < len(name); {
		for i < len(name) && isSegmentSep(name[i]) {
			i++
		}
		j := i
		for j < len(name) && (name[j] >= 'a' && name[j] <= 'z' || name[j] >= 'A' && name[j] <= 'Z') {
			j++
		}
		if j == i {
			return n > 0 && i == len(name)
		}
		if !isCredSegment(name[i:j]) {
			return false
		}
		n++
		i = j
	}
	return n > 0
}

func onlyBlanks(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// contextStrongSegment reports whether seg is "access" or "private" (any
// case), the last words that name a credential strongly in generic-context
// (acmeACCESS=V, acme PRIVATE V) though not as a key of their own
// (strongKeyName): the value must still have a credential's shape (16
// characters or more of a token alphabet), which an access level or a
// private flag does not.
func contextStrongSegment(seg []byte) bool {
	for len(seg) > 0 && isSegmentSep(seg[len(seg)-1]) {
		seg = seg[:len(seg)-1]
	}
	return len(seg) == len("access") && equalFoldLower(seg, "access") || len(seg) == len("private") && equalFoldLower(seg, "private")
}

// strongKeyName reports whether a key (a JSON key, an annotation name)
// names a credential strongly: its last word is one of strongCredSegments
// and it does not say license (isLicenseName). A value directly under such
// a key is judged as by generic-context after "NAME=" (strongContext).
func strongKeyName(key []byte) bool {
	ls := lastSegment(key)
	return ls >= 0 && isStrongSegment(key[ls:]) && !isLicenseName(key)
}

// isSegmentSep reports whether c separates the words of a name
// (nameSegments).
func isSegmentSep(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == '/' || c == ' ' || c == '\t' || c == ':'
}

// lastSegment returns where the last word of name starts, split as
// nameSegments splits (at separators and at a capital after a lower-case
// letter), or -1 when name has none; it does not allocate.
func lastSegment(name []byte) int {
	e := len(name)
	for e > 0 && isSegmentSep(name[e-1]) {
		e--
	}
	if e == 0 {
		return -1
	}
	s := e
	for s > 0 && !isSegmentSep(name[s-1]) {
		s--
		if c := name[s]; c >= 'A' && c <= 'Z' && s > 0 && name[s-1] >= 'a' && name[s-1] <= 'z' {
			break
		}
	}
	return s
}

// isStrongSegment reports whether seg, up to its trailing separators, is
// one of strongCredSegments in any case, without allocating.
func isStrongSegment(seg []byte) bool {
	for len(seg) > 0 && isSegmentSep(seg[len(seg)-1]) {
		seg = seg[:len(seg)-1]
	}
	var buf [16]byte
	if len(seg) > len(buf) {
		return false
	}
	for i, c := range seg {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return strongCredSegments[string(buf[:len(seg)])]
}

// keyboardRows are the letter rows of a keyboard, typed as stand-ins
// ("qwertyuiop", "zxcvbnm").
var keyboardRows = [...]string{"qwertyuiop", "asdfghjkl", "zxcvbnm"}

// sequenceResidue counts the letters and digits of v that no documentation
// pattern explains, read without case: runs of four or more characters in
// order (either direction), interleaved letter-digit steps ("a1b2c3"), a
// count in every other place ("d1e2c3b4a5f6"), four or more characters of
// a keyboard row, and a block of four or more that repeats what came before
// ("abcdef1234abcdef1234"). It returns that count and the longest run of
// such characters. A stand-in written for the documentation leaves few
// (abcdef1234567890abcdef1234567890: none); a real key with part of it
// overwritten by a sequence leaves many.
func sequenceResidue(v string) (int, int) {
	if len(v) > 512 {
		return len(v), len(v)
	}
	// Case does not hide a sequence: "abcDEFghIJkl" is typed in order.
	v = strings.ToLower(v)
	var covered [512]bool
	mark := func(i, j int) {
		for k := i; k < j; k++ {
			covered[k] = true
		}
	}
	// Runs in order, up or down.
	for dir := -1; dir <= 1; dir += 2 {
		for i := 0; i < len(v); {
			j := i + 1
			for j < len(v) && isAlnumByte(v[j]) && isAlnumByte(v[j-1]) && int(v[j])-int(v[j-1]) == dir {
				j++
			}
			if j-i >= 4 {
				mark(i, j)
			}
			i = j
		}
	}
	// Interleaved steps: v[i] and v[i+2] step by one, letters and digits
	// alternating.
	for dir := -1; dir <= 1; dir += 2 {
		for i := 0; i+2 < len(v); {
			j := i
			for j+2 < len(v) && isAlnumByte(v[j]) && isAlnumByte(v[j+2]) && int(v[j+2])-int(v[j]) == dir && isDigitByte(v[j]) != isDigitByte(v[j+1]) {
				j++
			}
			if j-i >= 4 {
				mark(i, j+2)
			}
			i = j + 1
		}
	}
	// A count in every other place ("d1e2c3b4a5f6": 1 to 6 between other
	// characters): five or more steps of one, the characters between them
	// going with them.
	for dir := -1; dir <= 1; dir += 2 {
		for start := 0; start < 2; start++ {
			for i := start; i+2 < len(v); {
				j := i
				for j+2 < len(v) && isAlnumByte(v[j]) && isAlnumByte(v[j+1]) && isAlnumByte(v[j+2]) && int(v[j+2])-int(v[j]) == dir &&
					isDigitByte(v[j]) == isDigitByte(v[j+2]) && isDigitByte(v[j]) != isDigitByte(v[j+1]) {
					j += 2
				}
				if (j-i)/2 >= 5 {
					mark(i, j+1)
				}
				i = max(j, i+2)
			}
		}
	}
	// Keyboard rows.
	l := v
	for _, row := range keyboardRows {
		for i := 0; i+4 <= len(l); i++ {
			n := 0
			for i+n < len(l) && strings.Contains(row, l[i:i+n+1]) {
				n++
			}
			if n >= 4 {
				mark(i, i+n)
			}
		}
	}
	// Repeated blocks.
	for i := 4; i+4 <= len(v); i++ {
		if strings.Contains(v[:i], v[i:i+4]) {
			mark(i, i+4)
		}
	}
	rest, run, longest := 0, 0, 0
	for i := 0; i < len(v); i++ {
		if isAlnumByte(v[i]) && !covered[i] {
			rest++
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return rest, longest
}

// isLicenseName reports whether a name says license: a license key is an
// entitlement more than a credential (see uuidCredName), and its
// documentation stand-ins stay stand-ins.
func isLicenseName(name []byte) bool {
	for _, s := range nameSegments(name) {
		if strings.HasPrefix(s, "license") || strings.HasPrefix(s, "licence") {
			return true
		}
	}
	return false
}

// uuidCredName reports whether a name makes a UUID a credential: it says
// key, token, secret, password or credential (Heroku, Postmark, Snyk keys
// are UUIDs); "access" or "private" alone do not.
func uuidCredName(name []byte) bool {
	segs := nameSegments(name)
	for _, s := range segs {
		if s == "license" || strings.HasPrefix(s, "license") {
			return false // a license key that is a UUID is an entitlement id
		}
	}
	for _, s := range segs {
		for _, w := range [...]string{"key", "token", "secret", "password", "pwd", "credential", "apikey", "tkn"} {
			if strings.HasSuffix(s, w) {
				return true
			}
		}
	}
	return false
}

func isHexString(v string) bool {
	for i := 0; i < len(v); i++ {
		if !isHex(v[i]) && v[i] != '-' {
			return false
		}
	}
	return true
}

func isLetters(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return len(b) > 0
}
