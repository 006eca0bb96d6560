package redact

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// Priorities: lower wins when two findings overlap.
const (
	prioBlock    = 5  // whole private-key blocks
	prioProvider = 10 // provider-prefixed tokens
	prioURL      = 20 // URL credentials, connection strings, webhooks
	prioContext  = 30 // provider values recognised by a nearby keyword
	prioGeneric  = 50 // secret-named keys with high-entropy values
	prioLoose    = 60 // high-entropy strings near secret words in prose
)

// check selects the validation applied to a candidate secret.
type check int

const (
	// checkFormat: the rule's format (fixed prefix, length and alphabet, or
	// a checksum) vouches for the value, whatever its body holds ("tvly-xxxx…",
	// "…EXAMPLE…", a run of one letter): only explicit template syntax vetoes
	// it. Documentation samples that keep a provider's format are redacted,
	// as Nosey Parker labels them (its Tavily, Slack and Salesforce examples).
	checkFormat  check = iota
	checkStandIn       // a key-context value with no format: stand-in check (standIn)
	checkContext       // a keyword-context value: stand-in, not a UUID, entropy floor; with format set, checkFormat
	checkGeneric       // secret-named key: full generic value checks
	checkLoose         // prose: strict generic value checks
	// checkPassword: a position that proves a password (a URL's userinfo,
	// a connection string's Password=/Pwd=, a command line's -p/-Password,
	// a Gradle credentials or .netrc password, a password compared or
	// passed in code): the value there is written literally, so any literal
	// is the password; only references, masks and no value are kept
	// (isPasswordRef).
	checkPassword
	// checkChosen: a value someone chose that no position proves to be a
	// password (a JWT signing secret, a short bearer token): the stand-in
	// words of the placeholder list and constant names are kept
	// (isPasswordStandIn).
	checkChosen
	checkNone // format alone decides: private-key blocks, where no body check may veto
	// checkShape: a value next to a credential word in any shape
	// (generic-context): judged by its shape alone (contextValueOK).
	checkShape
)

// ruleDef is one detector of the default rule set.
type ruleDef struct {
	id, family, desc string
	keywords         []string // prefilter keywords; a leading '=' makes one case-sensitive
	pattern          string   // RE2; the secret is the first participating capture group outside (?P<name>), else the whole match
	prio             int
	check            check
	minEntropy       float64
	format           bool                     // checkContext: the value has a fixed length and alphabet, so it is judged like checkFormat
	formatGate       int                      // with format: the text fact every value of the format implies (factHex32, factAlnum24); default factFormat16
	need             []string                 // text must contain one of these (lowercase) besides the keyword
	anySep           bool                     // a keyword-context rule whose pattern needs no ':' or '=' (a command line, a header)
	validate         func(secret string) bool // extra format validation
	glue             glue                     // what may stand before a match; default: decided from a provider's prefix
	leadSpace        bool                     // the match must start the text or follow a blank (space, tab, newline)
}

func provider(id, family, desc string, kw []string, pattern string) ruleDef {
	return ruleDef{id: id, family: family, desc: desc, keywords: kw, pattern: pattern, prio: prioProvider}
}

func pemRule(id, label, desc string) ruleDef {
	// Words may be joined by '+' as well, the form-encoding of a space (a key
	// pasted into a URL query).
	words := strings.ReplaceAll(label, " ", `[ +]`)
	b := `-----BEGIN[ +]` + words + `-----`
	e := `-----END[ +]` + words + `-----`
	lower := strings.ToLower(label)
	return ruleDef{
		id: id, family: "private-key", desc: desc,
		keywords: []string{"begin " + lower, "begin+" + strings.ReplaceAll(lower, " ", "+")},
		// The header is enough: the whole block up to its END line, or, when
		// there is none, the rest of the value, whatever the body holds.
		pattern: b + `(?:[\s\S]*?` + e + `|[\s\S]*)`,
		prio:    prioBlock,
		check:   checkNone,
	}
}

// secretWords are the names that make a key or a query parameter secret.
const secretWordsRe = `(?:password|passwd|passphrase|pwd|secret|token|api[_\-.]?key|apikey|access[_\-.]?key|auth[_\-.]?key|private[_\-.]?key|signing[_\-.]?key|credentials?|auth|key|sig|signature|bind|dsn|conn|webhook|hook|private|pw|pass|creds?)`

func defaultRuleDefs() []ruleDef {
	return []ruleDef{
		// AWS
		{id: "aws-access-key-id", family: "aws", desc: "AWS access key ID (AKIA…, ASIA…)", keywords: []string{"=AKIA", "=ASIA", "=ABIA", "=ACCA", "=A3T"},
			pattern: `\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b`, prio: prioProvider},
		{id: "aws-secret-access-key", family: "aws", desc: "AWS secret access key next to an AWS keyword", keywords: []string{"aws", "secret_access", "secretaccess", "secret-access"},
			pattern: `(?i)(?:aws|secret[_\-.]?access)[\w.\-/]{0,30}?(?:secret|key)[\w.\-]{0,20}\\?["']?\s*(?::|=|=>)\s*\\?["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)`,
			prio:    prioContext, check: checkContext, format: true},
		{id: "aws-session-token", family: "aws", desc: "AWS session token next to a session-token keyword", keywords: []string{"session_token", "sessiontoken", "session-token"},
			pattern: `(?i)session[_\-]?token\\?["']?\s*(?::|=)\s*\\?["']?([A-Za-z0-9/+=]{100,})`, prio: prioContext, check: checkContext, format: true},
		provider("aws-mws-key", "aws", "Amazon MWS auth token", []string{"amzn.mws."}, `amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`),
		// GCP
		provider("gcp-api-key", "gcp", "Google API key (AIza…)", []string{"=AIza"}, `\bAIza[0-9A-Za-z_\-]{35}`),
		provider("gcp-oauth-client-secret", "gcp", "Google OAuth client secret (GOCSPX-…)", []string{"=GOCSPX-"}, `\bGOCSPX-[0-9A-Za-z_\-]{28}`),
		// Google's OAuth client secrets before the GOCSPX- prefix (2021): 24
		// base64url characters under a client secret key. Length and alphabet
		// are the format, so it vouches like a prefix (a run of one letter too).
		{id: "gcp-oauth-client-secret-legacy", family: "gcp", desc: "Google OAuth client secret of the older form (24 base64url characters under a client secret key)",
			keywords: []string{"client_secret", "clientsecret", "client-secret", "client.secret"},
			pattern:  `(?i)client[_\-.]?secret\\?["']?\s*(?::|=|=>)\s*\\?["']?([A-Za-z0-9_\-]{24})(?:[^A-Za-z0-9_\-]|$)`,
			prio:     prioContext, check: checkContext, format: true},
		provider("gcp-oauth-access-token", "gcp", "Google OAuth access token (ya29.…)", []string{"=ya29."}, `\bya29\.[0-9A-Za-z_\-]{30,}`),
		{id: "gcp-service-account-key", family: "gcp", desc: "private key of a Google service-account JSON key file", keywords: []string{`"private_key"`},
			pattern: `"private_key"\s*:\s*"(-----BEGIN PRIVATE KEY-----(?:[^"\\]|\\.)*?-----END PRIVATE KEY-----(?:\\n)?)"`, prio: prioBlock - 1},
		// Azure
		{id: "azure-storage-key", family: "azure", desc: "Azure storage account key (AccountKey=…)", keywords: []string{"accountkey"},
			pattern: `(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)`, prio: prioProvider},
		{id: "azure-sas-token", family: "azure", desc: "Azure shared access signature (sig= of a SAS URL or token)", keywords: []string{"sig="}, need: []string{"sv=", "se=", "sp="},
			pattern: `(?i)(?:^|[?&;\s"'])sig=([A-Za-z0-9%+/=]{20,})`, prio: prioURL},
		{id: "azure-shared-access-key", family: "azure", desc: "Azure Service Bus / Event Hubs SharedAccessKey", keywords: []string{"sharedaccesskey="},
			pattern: `(?i)SharedAccessKey=([A-Za-z0-9+/]{43}=)`, prio: prioProvider},
		provider("azure-client-secret", "azure", "Azure AD (Entra ID) client secret (…Q~…)", []string{"q~"}, `([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})`),
		{id: "azure-devops-pat", family: "azure", desc: "Azure DevOps personal access token next to an Azure DevOps keyword", keywords: []string{"azure", "devops", "ado_"},
			pattern: `(?i)(?:azure|devops|ado)[\w.\-]{0,30}?(?:pat|token|key)[\w.\-]{0,10}\\?["']?\s*(?::|=)\s*\\?["']?([a-z2-7]{52})\b`, prio: prioContext, check: checkContext, format: true, formatGate: factAlnum24},
		// GitHub
		provider("github-pat", "github", "GitHub classic personal access token (ghp_…)", []string{"ghp_"}, `\bghp_[A-Za-z0-9]{36}\b`),
		provider("github-fine-grained-pat", "github", "GitHub fine-grained personal access token (github_pat_…)", []string{"github_pat_"}, `\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b`),
		provider("github-oauth-token", "github", "GitHub OAuth access token (gho_…)", []string{"gho_"}, `\bgho_[A-Za-z0-9]{36}\b`),
		provider("github-user-to-server-token", "github", "GitHub App user-to-server token (ghu_…)", []string{"ghu_"}, `\bghu_[A-Za-z0-9]{36}\b`),
		provider("github-app-token", "github", "GitHub App installation token (ghs_…)", []string{"ghs_"}, `\bghs_[A-Za-z0-9]{36}\b`),
		provider("github-refresh-token", "github", "GitHub refresh token (ghr_…)", []string{"ghr_"}, `\bghr_[A-Za-z0-9]{36,76}\b`),
		// GitLab
		provider("gitlab-pat", "gitlab", "GitLab personal, project or group access token (glpat-…)", []string{"glpat-"}, `\bglpat-[0-9A-Za-z_\-]{20,}`),
		provider("gitlab-deploy-token", "gitlab", "GitLab deploy token (gldt-…)", []string{"gldt-"}, `\bgldt-[0-9A-Za-z_\-]{20,}`),
		provider("gitlab-runner-token", "gitlab", "GitLab runner authentication token (glrt-…)", []string{"glrt-"}, `\bglrt-[0-9A-Za-z_\-]{20,}`),
		provider("gitlab-runner-registration-token", "gitlab", "GitLab runner registration token (GR1348941…)", []string{"gr1348941"}, `\bGR1348941[0-9A-Za-z_\-]{20,}`),
		provider("gitlab-pipeline-trigger-token", "gitlab", "GitLab pipeline trigger token (glptt-…)", []string{"glptt-"}, `\bglptt-[0-9a-f]{40}\b`),
		provider("gitlab-oauth-secret", "gitlab", "GitLab OAuth application secret (gloas-…)", []string{"gloas-"}, `\bgloas-[0-9A-Za-z_\-]{64}`),
		provider("gitlab-other-token", "gitlab", "other GitLab tokens (feed, incoming mail, agent, CI job, SCIM, feature flags)", []string{"glft-", "glimt-", "glagent-", "glcbt-", "glsoat-", "glffct-"},
			`\bgl(?:ft|imt|agent|cbt|soat|ffct)-[0-9A-Za-z_\-]{20,}`),
		// Slack
		provider("slack-bot-token", "slack", "Slack bot token (xoxb-…)", []string{"xoxb-"}, `\bxoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24,34}\b`),
		provider("slack-user-token", "slack", "Slack user or enterprise token (xoxp-, xoxe-)", []string{"xoxp-", "xoxe-"}, `\bxox[pe](?:-[0-9]{10,13}){3}-[A-Za-z0-9]{28,34}\b`),
		provider("slack-app-token", "slack", "Slack app-level token (xapp-…)", []string{"xapp-"}, `(?i)\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+\b`),
		provider("slack-config-token", "slack", "Slack configuration access or refresh token (xoxe.xox…, xoxe-1-…)", []string{"xoxe.xox", "xoxe-1-"}, `(?i)\bxoxe(?:\.xox[bp]-\d-[A-Z0-9]{150,}|-\d-[A-Z0-9]{140,})\b`),
		provider("slack-legacy-bot-token", "slack", "Slack legacy bot token (xoxb-<id>-<24 alphanumerics>)", []string{"xoxb-"}, `\bxoxb-[0-9]{8,13}-[A-Za-z0-9]{24}\b`),
		provider("slack-legacy-token", "slack", "Slack legacy workspace or app token (xoxa-, xoxr-, xoxs-, xoxo-)", []string{"xoxa-", "xoxr-", "xoxs-", "xoxo-"}, `\bxox[aros]-(?:\d+-)+[0-9A-Za-z]{10,}\b`),
		{id: "slack-webhook-url", family: "slack", desc: "Slack incoming-webhook or workflow URL (path redacted, host kept)", keywords: []string{"hooks.slack.com"},
			pattern: `hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+)`, prio: prioURL},
		// Payments and commerce
		provider("stripe-secret-key", "payment", "Stripe secret or restricted key (sk_live_, rk_live_, sk_test_, rk_test_)", []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"}, `\b[rs]k_(?:live|test)_[0-9A-Za-z]{24,247}\b`),
		provider("stripe-webhook-secret", "payment", "Stripe webhook signing secret (whsec_…)", []string{"whsec_"}, `\bwhsec_[A-Za-z0-9+/=]{32,}`),
		provider("square-token", "payment", "Square access token or OAuth secret (sq0atp-, sq0csp-)", []string{"sq0atp-", "sq0csp-"}, `\bsq0(?:atp-[0-9A-Za-z_\-]{22}|csp-[0-9A-Za-z_\-]{43})`),
		provider("braintree-access-token", "payment", "Braintree / PayPal access token", []string{"access_token$production$", "access_token$sandbox$"}, `access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}`),
		provider("shopify-token", "payment", "Shopify access token or shared secret (shpat_, shpca_, shppa_, shpss_)", []string{"shpat_", "shpca_", "shppa_", "shpss_"}, `\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b`),
		// Messaging
		provider("twilio-api-key", "messaging", "Twilio API key SID paired secret (SK…)", []string{"=SK"}, `\bSK[0-9a-fA-F]{32}\b`),
		{id: "twilio-auth-token", family: "messaging", desc: "Twilio auth token next to a Twilio keyword", keywords: []string{"twilio"},
			pattern: `(?i)twilio[\w.\-/]{0,30}?(?:token|secret|auth)[\w.\-]{0,10}\\?["']?\s*(?::|=)\s*\\?["']?([0-9a-f]{32})\b`, prio: prioContext, check: checkContext, format: true, formatGate: factHex32},
		provider("sendgrid-api-key", "messaging", "SendGrid API key (SG.…)", []string{"=SG."}, `\bSG\.[0-9A-Za-z_\-]{22}\.[0-9A-Za-z_\-]{43}`),
		provider("mailgun-api-key", "messaging", "Mailgun API key (key-…)", []string{"key-"}, `\bkey-[0-9a-f]{32}\b`),
		provider("mailchimp-api-key", "messaging", "Mailchimp API key (…-usN)", []string{"-us"}, `\b[0-9a-f]{32}-us[0-9]{1,2}\b`),
		provider("telegram-bot-token", "messaging", "Telegram bot token", []string{"=:AA"}, `\b[0-9]{8,10}:AA[0-9A-Za-z_\-]{32,33}\b`),
		{id: "telegram-bot-token-context", family: "messaging", desc: "Telegram bot token of any body (<bot id>:<35 characters>, as Telegram's Bot API documents it) next to a Telegram keyword (telegram, tgram://)",
			keywords: []string{"telegram", "tgram://"},
			pattern:  `(?i)(?:telegram|tgram://)[\w.\-/:"' \t=]{0,16}?\b([0-9]{6,10}:[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)`, prio: prioContext, check: checkContext, format: true, anySep: true},
		{id: "discord-webhook-url", family: "messaging", desc: "Discord webhook URL (token redacted)", keywords: []string{"discord"},
			pattern: `discord(?:app)?\.com/api/webhooks/[0-9]+/([A-Za-z0-9_\-]{60,70})`, prio: prioURL},
		{id: "teams-webhook-url", family: "messaging", desc: "Microsoft Teams incoming-webhook URL, current or legacy (path redacted)", keywords: []string{"webhook.office.com", "outlook.office.com/webhook", "outlook.office365.com/webhook"},
			pattern: `\.webhook\.office\.com/webhookb2/([A-Za-z0-9@\-/]{40,})|outlook\.office(?:365)?\.com/webhook/([A-Za-z0-9@\-/]{40,})`, prio: prioURL},
		// Package registries and CI
		provider("npm-token", "registry", "npm access token (npm_…)", []string{"npm_"}, `\bnpm_[A-Za-z0-9]{36}\b`),
		{id: "npmrc-auth", family: "registry", desc: "_authToken / _auth / _password in an .npmrc", keywords: []string{"_authtoken", "_auth=", "_password="},
			pattern: `(?i)(?:_authToken|_auth|_password)\s*=\s*["']?([^\s"'$]{8,})`, prio: prioContext, check: checkStandIn},
		provider("pypi-token", "registry", "PyPI upload token (pypi-AgEIcHlwaS5vcmc…)", []string{"pypi-ageichlwas5vcmc"}, `\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}`),
		provider("dockerhub-pat", "registry", "Docker Hub personal access token (dckr_pat_…)", []string{"dckr_pat_", "dckr_oat_"}, `\bdckr_(?:pat|oat)_[A-Za-z0-9_\-]{27,}`),
		{id: "docker-config-auth", family: "registry", desc: "auth field of a Docker config.json (base64 user:password)", keywords: []string{`"auth"`}, need: []string{"auths"},
			pattern: `"auth"\s*:\s*"([A-Za-z0-9+/]{8,}={0,2})"`, prio: prioContext, validate: isBasicCredential},
		provider("artifactory-api-key", "registry", "JFrog Artifactory API key (AKCp…)", []string{"=AKCp"}, `\bAKCp[0-9A-Za-z]{69}\b`),
		provider("artifactory-reference-token", "registry", "JFrog Artifactory reference token (cmVmd…)", []string{"=cmVmd"}, `\bcmVmd[0-9A-Za-z]{59}\b`),
		provider("nuget-api-key", "registry", "NuGet API key (oy2…)", []string{"=oy2"}, `\boy2[a-z0-9]{43}\b`),
		provider("rubygems-api-key", "registry", "RubyGems API key (rubygems_…)", []string{"rubygems_"}, `\brubygems_[0-9a-f]{48}\b`),
		provider("pulumi-token", "registry", "Pulumi access token (pul-…)", []string{"pul-"}, `\bpul-[0-9a-f]{40}\b`),
		provider("terraform-cloud-token", "registry", "Terraform Cloud / Enterprise API token (….atlasv1.…)", []string{".atlasv1."}, `\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,70}`),
		provider("circleci-token", "registry", "CircleCI personal API token (CCIPAT_…)", []string{"ccipat_"}, `\bCCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}\b`),
		provider("sonarqube-token", "registry", "SonarQube token (sqp_, squ_, sqa_)", []string{"sqp_", "squ_", "sqa_"}, `\bsq[pua]_[a-f0-9]{40}\b`),
		provider("databricks-token", "registry", "Databricks personal access token (dapi…)", []string{"=dapi"}, `\bdapi[a-f0-9]{32}(?:-[0-9])?\b`),
		// Observability
		{id: "datadog-api-key", family: "observability", desc: "Datadog API or application key next to a Datadog keyword", keywords: []string{"datadog", "dd_api", "dd-api", "dd_app", "dd-app", "ddapi", "ddapp"},
			pattern: `(?i)(?:datadog|dd)[\w.\-/]{0,30}?(?:api|app|application|client)[_\-.]?(?:key|token)\\?["']?\s*(?::|=)\s*\\?["']?([0-9a-f]{40}|[0-9a-f]{32})\b`, prio: prioContext, check: checkContext, format: true, formatGate: factHex32},
		provider("newrelic-key", "observability", "New Relic user, insert or browser key (NRAK-, NRII-, NRJS-)", []string{"nrak-", "nrii-", "nrjs-", "nraa-"}, `\b(?:NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_\-]{32}|NRJS-[a-f0-9]{19}|NRAA-[a-f0-9]{27})\b`),
		provider("newrelic-license-key", "observability", "New Relic ingest license key (…NRAL)", []string{"nral"}, `\b(?:eu01xx[0-9a-f]{30}|[0-9a-f]{36})NRAL\b`),
		{id: "pagerduty-key", family: "observability", desc: "PagerDuty API token or integration key next to a PagerDuty keyword", keywords: []string{"pagerduty"},
			pattern: `(?i)pagerduty[\w.\-/ ]{0,40}?(?:key|token)\\?["']?\s*(?::|=)\s*\\?["']?([A-Za-z0-9_+\-]{20,32})\b`, prio: prioContext, check: checkContext, minEntropy: 3.0},
		{id: "sentry-dsn", family: "observability", desc: "Sentry DSN key (host and project kept)", keywords: []string{"sentry", "ingest"},
			pattern: `https?://([0-9a-f]{32}(?::[0-9a-f]{32})?)@[A-Za-z0-9.\-]+(?::[0-9]+)?/[0-9]+`, prio: prioURL},
		provider("sentry-auth-token", "observability", "Sentry auth token (sntrys_, sntryu_)", []string{"sntrys_", "sntryu_"}, `\bsntry(?:s_[A-Za-z0-9+/=_]{60,}|u_[a-f0-9]{64}\b)`),
		provider("grafana-token", "observability", "Grafana Cloud, service-account or legacy API key (glc_, glsa_, eyJrIjoi…)", []string{"glc_", "glsa_", "=eyJrIjoi"}, `\b(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b|eyJrIjoi[A-Za-z0-9+/]{60,400}={0,2})`),
		provider("dynatrace-token", "observability", "Dynatrace API token (dt0c01.…)", []string{"dt0c01."}, `\bdt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}\b`),
		// AI providers
		provider("openai-api-key", "ai", "OpenAI API key (sk-…T3BlbkFJ…, sk-proj-…)", []string{"t3blbkfj", "sk-proj-", "sk-svcacct-", "sk-admin-"},
			`\bsk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}|\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{80,}`),
		provider("anthropic-api-key", "ai", "Anthropic API or admin key (sk-ant-…)", []string{"sk-ant-"}, `\bsk-ant-(?:api|admin|sid)[0-9]{2}-[A-Za-z0-9_\-]{80,}`),
		provider("huggingface-token", "ai", "Hugging Face access token (hf_…, api_org_…)", []string{"hf_", "api_org_"}, `\b(?:hf_[A-Za-z]{34}|api_org_[A-Za-z]{34})\b`),
		provider("jina-api-key", "ai", "Jina AI API key (jina_…)", []string{"jina_"}, `\bjina_[A-Za-z0-9]{60}\b`),
		provider("groq-api-key", "ai", "Groq API key (gsk_…)", []string{"gsk_"}, `\bgsk_[A-Za-z0-9]{52}\b`),
		provider("replicate-token", "ai", "Replicate API token (r8_ and 37 or more characters)", []string{"r8_"}, `\br8_[A-Za-z0-9]{37}[A-Za-z0-9_\-]{0,23}\b`),
		provider("perplexity-api-key", "ai", "Perplexity API key (pplx-…)", []string{"pplx-"}, `\bpplx-[A-Za-z0-9]{48}\b`),
		// HashiCorp
		provider("vault-token", "vault", "HashiCorp Vault service, batch or recovery token (hvs., hvb., hvr.)", []string{"hvs.", "hvb.", "hvr."}, `\bhv[sbr]\.[A-Za-z0-9_\-]{24,}`),
		{id: "vault-legacy-token", family: "vault", desc: "legacy HashiCorp Vault token (s.…) next to a Vault keyword", keywords: []string{"vault"},
			pattern: `(?i)vault[\w.\-/]{0,30}?\\?["']?(?:\s*[:=]\s*|[ \t]+)\\?["']?(s\.[A-Za-z0-9]{24}(?:[A-Za-z0-9_\-]{40,})?)\b`, prio: prioContext, check: checkContext, format: true, formatGate: factAlnum24, anySep: true},
		provider("doppler-token", "vault", "Doppler token (dp.pt., dp.st.[env.], dp.sa., dp.ct., dp.scim., dp.audit.)", []string{"dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."},
			`\bdp\.(?:pt|st(?:\.[a-z0-9\-_]{2,35})?|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}`),
		{id: "vault-unseal-key", family: "vault", desc: "HashiCorp Vault unseal key (\"Unseal Key N:\", \"vault operator unseal\")", keywords: []string{"unseal"},
			pattern: `(?i)(?:unseal key(?: \d+)?:|operator unseal)[ \t]+([A-Za-z0-9+/]{40,}={0,2})`, prio: prioContext, check: checkContext, format: true, anySep: true},
		{id: "age-secret-key", family: "vault", desc: "age encryption secret key", keywords: []string{"age-secret-key-1"},
			pattern: `AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`, prio: prioProvider, check: checkNone},
		// SaaS and cloud platforms
		provider("atlassian-api-token", "saas", "Atlassian API token (ATATT3…)", []string{"=ATATT3"}, `\bATATT3[A-Za-z0-9_\-=]{150,}`),
		provider("bitbucket-app-password", "saas", "Bitbucket app password (ATBB…)", []string{"=ATBB"}, `\bATBB[A-Za-z0-9_=.\-]{32}`),
		provider("linear-api-key", "saas", "Linear API key (lin_api_…)", []string{"lin_api_"}, `\blin_api_[A-Za-z0-9]{40}\b`),
		provider("fullstory-api-key", "saas", "FullStory API key (na1.…, eu1.…: the data region and 100 or more base64 characters)", []string{"na1.", "eu1."}, `\b(?:na1|eu1)\.[A-Za-z0-9+/]{100,110}={0,2}`),
		provider("notion-token", "saas", "Notion integration token (ntn_…)", []string{"ntn_"}, `\bntn_[0-9]{11}[A-Za-z0-9]{35}\b`),
		provider("postman-api-key", "saas", "Postman API key (PMAK-…)", []string{"pmak-"}, `\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b`),
		provider("digitalocean-token", "saas", "DigitalOcean token (dop_v1_, doo_v1_, dor_v1_)", []string{"dop_v1_", "doo_v1_", "dor_v1_"}, `\bdo[opr]_v1_[a-f0-9]{64}\b`),
		provider("supabase-token", "saas", "Supabase access token (sbp_…)", []string{"sbp_"}, `\bsbp_[a-z0-9]{40}\b`),
		provider("flyio-token", "saas", "Fly.io token (fo1_…, FlyV1 fm2_…)", []string{"fo1_", "fm2_"}, `\b(?:fo1_[A-Za-z0-9_\-]{43}|fm2_[A-Za-z0-9+/]{100,}={0,2})`),
		provider("mapbox-secret-token", "saas", "Mapbox secret token (sk.eyJ…)", []string{"sk.eyj"}, `\bsk\.eyJ[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,}`),
		provider("okta-api-token", "saas", "Okta API token (SSWS 00…)", []string{"ssws"}, `\bSSWS[ \t]+(00[A-Za-z0-9_\-]{40})\b`),
		{id: "okta-api-token-context", family: "saas", desc: "Okta API token (00…) next to an Okta keyword", keywords: []string{"okta"},
			pattern: `(?i)okta[\w.\-]{0,30}?(?:token|key|secret)[\w.\-]{0,10}\\?["']?(?:[ \t]*\{[ \t]*\r?\n[ \t]*default[ \t]*)?\s*(?::|=)\s*\\?["']?(00[A-Za-z0-9_\-]{40})\b`, prio: prioContext, check: checkContext, format: true},
		provider("adafruit-io-key", "saas", "Adafruit IO key (aio_…)", []string{"aio_"}, `\baio_[A-Za-z0-9]{28}\b`),
		provider("dependency-track-api-key", "saas", "Dependency-Track API key (odt_…)", []string{"odt_"}, `\bodt_[A-Za-z0-9]{32,}\b`),
		provider("twitch-stream-key", "saas", "Twitch stream key (live_…_…)", []string{"live_"}, `\blive_[0-9]{6,12}_[A-Za-z0-9]{30}\b`),
		provider("salesforce-access-token", "saas", "Salesforce access or session token (00D…!…)", []string{"=00D"}, `\b00D[A-Za-z0-9]{12}![A-Za-z0-9_.]{96}`),
		{id: "thingsboard-access-token", family: "saas", desc: "ThingsBoard device access token in an API URL", keywords: []string{"thingsboard"},
			pattern: `thingsboard\.cloud/api/v1/([A-Za-z0-9]{20})/`, prio: prioURL},
		{id: "truenas-api-key", family: "saas", desc: "TrueNAS API key passed to auth.login_with_api_key", keywords: []string{"login_with_api_key"},
			pattern: `login_with_api_key"[^\]]{0,40}?\[\s*"([0-9]+-[A-Za-z0-9]{64})"`, prio: prioContext},
		// Django's generated keys draw from punctuation too ("%(", "${"), so no placeholder check.
		{id: "django-secret-key", family: "saas", desc: "Django secret key made by startproject (django-insecure-…)", keywords: []string{"django-insecure-"},
			pattern: `django-insecure-[^\s'"]{40,}`, prio: prioProvider, check: checkNone},
		{id: "sonarqube-legacy-token", family: "registry", desc: "SonarQube token without prefix (40 hex) next to sonar.login or a Sonar token key", keywords: []string{"sonar"},
			pattern: `(?i)sonar[\w.\-]{0,20}?(?:login|token)[\w.\-]{0,10}["']?\s*(?::|=|,)\s*["']?([0-9a-f]{40})\b`, prio: prioContext, check: checkContext, format: true, formatGate: factHex32, anySep: true},
		provider("azure-devops-pat-v2", "azure", "Azure DevOps personal access token, 84-character form (AZDO at 76)", []string{"=AZDO"}, `\b[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}\b`),
		provider("cratesio-api-token", "registry", "crates.io API token (cio…)", []string{"=cio"}, `\bcio[A-Za-z0-9]{32}\b`),
		provider("tavily-api-key", "ai", "Tavily API key (tvly-…)", []string{"tvly-"}, `\btvly-(?:dev-)?[A-Za-z0-9]{32}\b`),
		// Formats as Kingfisher's rule set (mongodb/kingfisher, Apache-2.0)
		// publishes them, for vendors of its development half; the formats
		// are facts, the patterns are written here.
		provider("buildkite-token", "registry", "Buildkite user access token (bkua_…)", []string{"bkua_"}, `\bbkua_[A-Za-z0-9]{40}\b`),
		provider("prefect-api-key", "saas", "Prefect API key (pnu_…)", []string{"pnu_"}, `\bpnu_[A-Za-z0-9]{36}\b`),
		provider("sourcegraph-token", "saas", "Sourcegraph access token or license key (sgp_…, slk_…)", []string{"sgp_", "slk_"},
			`\b(?:sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}|slk_[a-f0-9]{64})\b`),
		provider("segment-token", "saas", "Segment public API token (sgp_ and 64 alphanumerics)", []string{"sgp_"}, `\bsgp_[A-Za-z0-9]{64}\b`),
		provider("brevo-api-key", "messaging", "Brevo (Sendinblue) API key (xkeysib-…)", []string{"xkeysib-"}, `\bxkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}\b`),
		provider("shippo-token", "payment", "Shippo API token (shippo_live_…, shippo_test_…)", []string{"shippo_live_", "shippo_test_"}, `\bshippo_(?:live|test)_[a-fA-F0-9]{40}\b`),
		provider("hubspot-private-app-token", "saas", "HubSpot private app access token (pat-na1-…, pat-eu1-…)", []string{"pat-na1-", "pat-eu1-"},
			`\bpat-(?:na|eu)1-[A-Za-z0-9]{8}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{12}\b`),
		provider("elevenlabs-api-key", "ai", "ElevenLabs API key (sk_ and 48 hex digits)", []string{"sk_"}, `\bsk_[a-f0-9]{48}\b`),
		provider("clickup-token", "saas", "ClickUp personal API token (pk_<user id>_…)", []string{"pk_"}, `\bpk_[0-9]{7,8}_[0-9A-Z]{32}\b`),
		provider("frameio-token", "saas", "Frame.io developer token (fio-u-…)", []string{"fio-u-"}, `\bfio-u-[A-Za-z0-9_=\-]{64}`),
		provider("fleetbase-api-key", "saas", "Fleetbase live API key (flb_live_…)", []string{"flb_live_"}, `\bflb_live_[0-9a-zA-Z]{20}\b`),
		provider("pagarme-api-key", "payment", "Pagar.me live API key (ak_live_…)", []string{"ak_live_"}, `\bak_live_[A-Za-z0-9]{30}\b`),
		// "NF-" is two capitals and a dash: not distinctive enough to be
		// found glued to a word.
		{id: "nightfall-api-key", family: "saas", desc: "Nightfall API key (NF- and 32 alphanumerics)", keywords: []string{"=NF-"},
			pattern: `\bNF-[A-Za-z0-9]{32}\b`, prio: prioProvider, glue: glueNone},
		{id: "square-access-token", family: "payment", desc: "Square access token (EAAA…) in text that names Square", keywords: []string{"=EAAA"}, need: []string{"square"},
			pattern: `\bEAAA[A-Za-z0-9\-+=]{60}`, prio: prioProvider},
		// Password hashes: crackable offline, so kept out like passwords.
		{id: "password-hash", family: "password-hash", desc: "password hash in crypt(3) or Kerberos form (md5crypt, bcrypt, sha256/512crypt, scrypt, krb5 AS-REP/TGS)",
			keywords: []string{"$1$", "$2a$", "$2b$", "$2y$", "$2x$", "$5$", "$6$", "$7$", "$8$", "$9$", "$krb5asrep$", "$krb5tgs$"},
			pattern:  `\$(?:1|5|6)\$(?:rounds=[0-9]{1,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}|\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}|\$[789]\$[./A-Za-z0-9]{14}\$[./A-Za-z0-9]{43}|\$krb5(?:asrep|tgs)\$[0-9]{2}\$[^\s"'$]*\$?[0-9a-fA-F]{32}\$[0-9a-fA-F]{64,}`,
			prio:     prioProvider, check: checkNone},
		// Passwords on command lines
		{id: "cli-password", family: "generic", desc: "password on a command line (psexec -u U -p P, Connect-VIServer -Password P, curl -u user:P, --password P)",
			keywords: []string{" -p ", "-password", "--password", "curl", "--user"},
			pattern:  `(?i)(?:\s-u\s+\S+\s+-p\s+|\s--?password[ \t=]+|\bcurl\b[^\n]*?\s(?:-u|--user)[ \t]+["']?[^\s:"']+:)["']?([^\s"'\-][^\s"']{2,})`,
			prio:     prioGeneric - 1, check: checkPassword},
		// Passwords written as literals where no key names them
		{id: "password-literal", family: "generic", desc: "password as a quoted literal: in prose (\"the password is 'X'\"), compared in code (password == \"X\"), or passed to NetworkCredential/DirectoryEntry",
			keywords: []string{"password", "passwd", "secret", "networkcredential", "directoryentry"},
			// The pattern has no literal prefix; run it only where one of its forms can be.
			need: []string{` is '`, ` is "`, " is `", "==", "!=", "credential(", "entry("},
			pattern: `(?i)\bpass(?:word|wd)\b(?:[ \t]+[^\s]+){0,4}?[ \t]+is[ \t]+["'` + "`" + `]([^"'` + "`" + `\s]{3,64})["'` + "`" + `]` +
				`|\b(?:password|passwd|pwd|secret)[ \t]*[!=]=[ \t]*["']([^"'\s]{3,64})["']` +
				`|\bNetworkCredential\([ \t]*"[^"\n]*"[ \t]*,[ \t]*"([^"\n]{3,64})"` +
				`|\bDirectoryEntry\([ \t]*"[^"\n]*"[ \t]*,\s*"[^"\n]*"[ \t]*,\s*"([^"\n]{3,64})"`,
			prio: prioGeneric + 1, check: checkPassword},
		// JWT
		// Two "eyJ" parts joined by a dot are distinctive: glued to any word.
		{id: "jwt", family: "jwt", desc: "JSON Web Token (three base64url parts, header and payload JSON)", keywords: []string{"eyj"},
			pattern: `\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*`, prio: prioProvider, glue: glueAny},
		// Private keys
		pemRule("private-key-rsa", "RSA PRIVATE KEY", "PEM RSA private key (PKCS#1, also legacy-encrypted), whole block"),
		pemRule("private-key-ec", "EC PRIVATE KEY", "PEM EC private key, whole block"),
		pemRule("private-key-dsa", "DSA PRIVATE KEY", "PEM DSA private key, whole block"),
		pemRule("private-key-openssh", "OPENSSH PRIVATE KEY", "OpenSSH private key, whole block"),
		pemRule("private-key-pgp", "PGP PRIVATE KEY BLOCK", "ASCII-armoured PGP private key block"),
		pemRule("private-key-pkcs8", "PRIVATE KEY", "PEM PKCS#8 private key, whole block"),
		pemRule("private-key-encrypted", "ENCRYPTED PRIVATE KEY", "PEM encrypted PKCS#8 private key, whole block"),
		{id: "private-key-other", family: "private-key", desc: "any other private-key block (SSH2, ANY, …), whole block or the rest of the value", keywords: []string{"private key-----", "private key ----", "private+key-----", "private+key+----"},
			pattern: `-{4,5}[ +]?BEGIN[ +][A-Z0-9 +]*PRIVATE[ +]KEY(?:[ +]BLOCK)?[ +]?-{4,5}(?:[\s\S]*?-{4,5}[ +]?END[ +][A-Z0-9 +]*PRIVATE[ +]KEY(?:[ +]BLOCK)?[ +]?-{4,5}|[\s\S]*)`, prio: prioBlock + 1, check: checkNone},
		{id: "private-key-base64-pem", family: "private-key", desc: "base64 of a PEM private key (Kubernetes Secret data, …)", keywords: []string{"ls0tls1crudjti"},
			pattern: `LS0tLS1CRUdJTi[A-Za-z0-9+/]{40,}={0,2}`, prio: prioBlock, check: checkNone, validate: isBase64PEMKey},
		{id: "putty-private-key", family: "private-key", desc: "PuTTY private key file, up to its MAC or the rest of the value", keywords: []string{"putty-user-key-file-"},
			pattern: `PuTTY-User-Key-File-[0-9]+:[ +](?:[\s\S]*?Private-MAC:[ +][0-9a-f]+|[\s\S]*)`, prio: prioBlock, check: checkNone},
		// URL credentials
		{id: "url-password", family: "url-credentials", desc: "password in the userinfo of a URL (scheme, user and host kept)", keywords: []string{"://"}, need: []string{"@"},
			pattern: `\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:@/?#"'<>\\]*:([^\s/?#"'<>\\]+)@[^\s@/?#"'<>\\]`, prio: prioURL + 2, check: checkPassword},
		{id: "url-query-secret", family: "url-credentials", desc: "URL query parameter named like token, key, sig, password or secret", keywords: []string{"token=", "key=", "sig=", "signature=", "password=", "passwd=", "pwd=", "secret=", "auth=", "credential="},
			pattern: `[?&](?P<name>[A-Za-z0-9_.\-]*` + `(?i:token|key|sig|signature|password|passwd|pwd|secret|auth|credential)[A-Za-z0-9_.\-]*)=([^&#\s"'<>\\]+)`, prio: prioURL + 1, check: checkContext, minEntropy: 2.5},
		// Connection strings
		connRule("conn-postgres", "PostgreSQL connection URL password", "postgres", `postgres(?:ql)?(?:\+[a-z0-9]+)?`),
		connRule("conn-mysql", "MySQL / MariaDB connection URL password", "mysql", `(?:mysql|mariadb)(?:\+[a-z0-9]+)?`),
		connRule("conn-mongodb", "MongoDB connection URL password (mongodb://, mongodb+srv://)", "mongodb", `mongodb(?:\+srv)?`),
		connRule("conn-redis", "Redis connection URL password (redis://, rediss://)", "redis", `rediss?`),
		connRule("conn-amqp", "AMQP connection URL password (amqp://, amqps://)", "amqp", `amqps?`),
		connRule("conn-mssql", "SQL Server connection URL password (sqlserver://, mssql://)", "sqlserver", `(?:sqlserver|mssql)`),
		{id: "conn-jdbc", family: "connection-string", desc: "JDBC URL password (user:password@ or password= parameter)", keywords: []string{"jdbc:"},
			pattern: `(?i)\bjdbc:[a-z0-9]+:(?://[^\s:@/"'<>]*:([^\s@/"'<>]+)@|[^\s"'<>]*?[?&;:](?:password|pwd)=([^&;\s"'<>]+))`, prio: prioURL - 1, check: checkPassword},
		{id: "conn-odbc", family: "connection-string", desc: "ODBC / ADO.NET connection string Password= or Pwd=", keywords: []string{"password=", "pwd=", "password =", "pwd ="},
			need:    []string{"server=", "data source=", "uid=", "user id=", "driver=", "host=", "database=", "initial catalog="},
			pattern: `(?i)(?:^|[;"'\s])(?:password|pwd)\s*=\s*(\{[^}]*\}|[^;"'\r\n]+)`, prio: prioURL, check: checkPassword},
		// Files and tools that hold a password by position
		{id: "gradle-credentials", family: "generic", desc: "password in a Gradle credentials { } block (password 'P', password = \"P\")", keywords: []string{"credentials"}, need: []string{"password"},
			pattern: `(?i)\bcredentials[ \t]*\{[^{}]{0,400}?\bpassword[ \t]*=?[ \t]*["']([^"'\r\n]{1,200})["']`, prio: prioURL, check: checkPassword},
		{id: "dotnet-appsetting-secret", family: "generic", desc: ".NET configuration <add key=\"NAME\" value=\"V\"/> whose key names a secret (web.config, app.config, nuget.config)", keywords: []string{"<add"},
			pattern: `(?i)<add[ \t]+key[ \t]*=[ \t]*"(?P<name>[^"<>\r\n]{1,80})"[ \t]+value[ \t]*=[ \t]*"([^"<>;\r\n]{1,400})"`, prio: prioGeneric - 1, check: checkGeneric},
		{id: "jwt-secret", family: "jwt", desc: "JWT signing secret under the secret (or signing key) of a YAML jwt: block, judged as a chosen password", keywords: []string{"jwt:"},
			pattern: `(?i)\bjwt:[ \t]*\r?\n(?:[ \t]+[\w.\-]+:[^\n]*\n){0,8}?[ \t]+(?:secret(?:[_.\-]?key)?|signing[_.\-]?key)[ \t]*:[ \t]*(?:"([^"\r\n]{6,200})"|'([^'\r\n]{6,200})'|([^\s"']{6,200}))`, prio: prioGeneric - 1, check: checkChosen},
		{id: "android-buildconfig-secret", family: "generic", desc: "Android Gradle buildConfigField/resValue whose field name names a secret", keywords: []string{"buildconfigfield", "resvalue"},
			pattern: `(?i)\b(?:buildConfigField|resValue)[ \t]*\(?[ \t]*["'][\w.]+["'][ \t]*,[ \t]*["'](?P<name>\w{1,80})["'][ \t]*,[ \t]*["']\\?"?([^"'\s\\]{1,400})`, prio: prioGeneric - 1, check: checkGeneric, anySep: true},
		{id: "netrc-password", family: "generic", desc: ".netrc entry: machine HOST [login USER] password PASSWORD", keywords: []string{"machine"}, need: []string{"password"},
			// "machine" starts a line or follows a blank (leadSpace): the
			// pattern opens with the word itself, so long text is scanned
			// from its occurrences only (the prefix scan).
			pattern: `\bmachine[ \t]+\S+\s+(?:login[ \t]+\S+\s+)?password[ \t]+(\S+)`, prio: prioURL, check: checkPassword, leadSpace: true},
		{id: "kubernetes-bootstrap-token", family: "kubernetes", desc: "Kubernetes bootstrap token (<6>.<16> lowercase alphanumerics) or the token-secret of its Secret",
			keywords: []string{"bootstrap-token", "token-secret", "kubeadm"},
			pattern:  `(?i:bootstrap-token|kubeadm join[^\n]*--token)[ \t=]+["']?([a-z0-9]{6}\.[a-z0-9]{16})\b|(?m)^[ \t]*token-secret:[ \t]*["']?([a-z0-9]{16})\b`, prio: prioContext},
		{id: "jenkins-crumb", family: "generic", desc: "Jenkins CSRF crumb in a Jenkins-Crumb header (hex)", keywords: []string{"jenkins-crumb"},
			pattern: `(?i)\bJenkins-Crumb[ \t]*:[ \t]*([0-9a-f]{32,64})\b`, prio: prioContext},
		{id: "jenkins-setup-password", family: "generic", desc: "Jenkins initial admin password printed by the setup wizard (32 hex)", keywords: []string{"proceed to installation"},
			pattern: `(?i)password to proceed to installation:\s+([0-9a-f]{32})\b`, prio: prioContext},
		{id: "codeclimate-reporter-id", family: "saas", desc: "Code Climate test reporter ID (64 hex under CC_TEST_REPORTER_ID)", keywords: []string{"cc_test_reporter_id"},
			pattern: `(?i)\bCC_TEST_REPORTER_ID\\?["']?[ \t]*[:=][ \t]*["']?([0-9a-f]{64})\b`, prio: prioContext},
		{id: "postmark-token", family: "saas", desc: "Postmark server or account token (a UUID) under a Postmark key or header", keywords: []string{"postmark"},
			pattern: `(?i)postmark[\w.\-]{0,30}\\?["']?[ \t]*[:=][ \t]*["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b`, prio: prioContext},
		// Headers
		{id: "http-authorization-bearer", family: "generic", desc: "HTTP Authorization: Bearer header with a short token (RFC 6750 b64token)", keywords: []string{"bearer "}, need: []string{"authorization"},
			pattern: `(?i)\bauthorization[ \t]*:[ \t]*bearer[ \t]+([A-Za-z0-9_\-.~+/]*[0-9_\-.~+/][A-Za-z0-9_\-.~+/]*=*)`, prio: prioContext + 2, check: checkChosen},
		{id: "http-basic-auth", family: "generic", desc: "HTTP Basic credentials (base64 user:password)", keywords: []string{"basic "},
			pattern: `(?i)\bbasic\s+([A-Za-z0-9+/]{8,}={0,2})`, prio: prioContext, validate: isBasicCredential},
		{id: "http-bearer-token", family: "generic", desc: "HTTP Bearer token", keywords: []string{"bearer "},
			pattern: `(?i)\bbearer\s+([A-Za-z0-9_\-.~+/]{20,}=*)`, prio: prioContext + 1, check: checkLoose},
		// Generic
		{id: "generic-secret", family: "generic", desc: "high-entropy value of a secret-named key (password, token, apiKey, client_secret, …) in JSON, YAML, env or properties",
			keywords: []string{"password", "passwd", "passphrase", "pwd", "secret", "token", "key", "credential", "auth",
				"bind", "dsn", "conn", "webhook", "hook", "private", "pw", "pass", "cred"},
			pattern: `(?i)(?P<name>[a-z0-9_.\-]*` + secretWordsRe + `[a-z0-9_.\-]*)\\?["']?[ \t]*(?::|=|:=|=>)[ \t]*(?:[|>][-+]?[ \t]*\r?\n[ \t]*)?\\?["']?([^\s"'\\,;<>&` + "`" + `]{6,400})`,
			prio:    prioGeneric, check: checkGeneric},
		{id: "generic-context", family: "generic", desc: "credential-shaped value next to a credential word in any shape: key/value (YAML, JSON, env, properties, TOML, HCL, INI), shell flag, HTTP header, connection string, code, Markdown table, vendor-named keys (acmeKey, acme-token, acme.secret, x-acme-key, acmeSECRET V)",
			keywords: contextWords,
			pattern:  `(?i)(?P<name>[a-z0-9_.\-/]*(?:key|token|secret|password|passwd|pwd|credential|access|private|auth|tkn)[a-z0-9_.\-]*)["']?[ \t]*(?::=|=>|->|[:=|]|[ \t])[ \t]*["'` + "`" + `]?([A-Za-z0-9+/=_\-.~]{16,512})`,
			prio:     prioGeneric + 2, check: checkShape},
		{id: "generic-assigned", family: "generic", desc: "random value (32+ characters, letters and digits, not hex, high entropy) assigned directly to a name that is no known non-secret name (wandb=V, FINDL: V, export ACME=\"V\")",
			pattern: `(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)["']?[ \t]*(?::=|=>|[:=])[ \t]*["'` + "`" + `]?([A-Za-z0-9][A-Za-z0-9+/=_\-.~]{31,511})`,
			prio:    prioLoose + 1, check: checkShape},
		{id: "generic-keyword-entropy", family: "generic", desc: "high-entropy string right after a secret word in prose (\"the token is …\")",
			keywords: []string{"password", "passwd", "passphrase", "secret", "token", "key", "credential"},
			pattern:  `(?i)\b(?:password|passwd|passphrase|secret|token|api[ _\-]?key|access[ _\-]?key|credentials?)\b(?:[ \t]+[a-z]{1,12}){0,5}?(?:[ \t]*[:=][ \t]*|[ \t]+)["'` + "`" + `]?([A-Za-z0-9+/][A-Za-z0-9+/_\-.=~!@#$%^&*]{15,199})`,
			prio:     prioLoose, check: checkLoose},
	}
}

func connRule(id, desc, kw, scheme string) ruleDef {
	return ruleDef{id: id, family: "connection-string", desc: desc, keywords: []string{kw}, need: []string{"@"},
		pattern: `(?i)\b` + scheme + `://[^\s:@/?#"'<>\\]*:([^\s/?#"'<>\\]+)@[^\s@/?#"'<>\\]`, prio: prioURL, check: checkPassword}
}

// isBasicCredential reports whether s is base64 of "user:password".
func isBasicCredential(s string) bool {
	d, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		d, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return false
		}
	}
	i := bytes.IndexByte(d, ':')
	if i <= 0 || i == len(d)-1 {
		return false
	}
	for _, c := range d {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return !isPasswordStandIn(string(d[i+1:]))
}

// isBase64PEMKey reports whether a base64 run starts with the encoding of a
// PEM private-key header ("-----BEGIN … PRIVATE KEY").
func isBase64PEMKey(s string) bool {
	n := min(len(s), 80) &^ 3
	d, err := base64.StdEncoding.DecodeString(s[:n])
	if err != nil {
		return false
	}
	return bytes.HasPrefix(d, []byte("-----BEGIN ")) && bytes.Contains(d, []byte("PRIVATE KEY"))
}
