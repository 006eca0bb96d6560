package corpus

import (
	"encoding/base64"
	"net/url"
	"strings"
)

// kind is one type of secret the generator injects.
type kind struct {
	typ  string                       // rule id of the redact package that should find it
	val  func(g rnd) string           // a format-valid fake secret
	keys []string                     // key names it lives under (annotations, config, env); empty: text only
	wrap func(g rnd, m string) string // a text fragment holding the secret marker m
	url  bool                         // wrap yields a URL that can be an entity link
	pem  string                       // PEM kind, for private keys
}

func prefixed(typ, prefix, charset string, n int, keys []string, sentence string) kind {
	return kind{typ: typ, val: func(g rnd) string { return prefix + g.str(charset, n) }, keys: keys,
		wrap: func(g rnd, m string) string { return strings.ReplaceAll(sentence, "$", m) }}
}

func kinds() []kind {
	ks := []kind{
		prefixed("aws-access-key-id", "AKIA", base32aws, 16, []string{"aws_access_key_id", "AWS_ACCESS_KEY_ID"}, "aws_access_key_id = $"),
		{typ: "aws-secret-access-key", val: func(g rnd) string { return g.str(base62+"/+", 40) },
			keys: []string{"aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "awsSecretAccessKey"},
			wrap: func(g rnd, m string) string { return "aws_secret_access_key = " + m }},
		prefixed("gcp-api-key", "AIza", base64url, 35, []string{"google.com/maps-api-key", "GOOGLE_API_KEY", "firebaseApiKey"}, "Maps JavaScript key for the store locator: $"),
		prefixed("gcp-oauth-client-secret", "GOCSPX-", base64url, 28, []string{"GOOGLE_CLIENT_SECRET", "oauthClientSecret"}, "auth.providers.google.development.clientSecret: $"),
		{typ: "azure-storage-key", val: func(g rnd) string { return base64.StdEncoding.EncodeToString(g.bytes(64)) },
			keys: nil, wrap: func(g rnd, m string) string {
				return "DefaultEndpointsProtocol=https;AccountName=acme" + g.str(lowerChars, 6) + ";AccountKey=" + m + ";EndpointSuffix=core.windows.net"
			}},
		{typ: "azure-sas-token", url: true, val: func(g rnd) string { return url.QueryEscape(base64.StdEncoding.EncodeToString(g.bytes(32))) },
			wrap: func(g rnd, m string) string {
				return "https://acme" + g.str(lowerChars, 5) + ".blob.core.windows.net/backups?sv=2022-11-02&ss=b&srt=co&sp=rl&se=2026-01-01T00:00:00Z&st=2024-01-01T00:00:00Z&spr=https&sig=" + m
			}},
		{typ: "azure-client-secret", val: func(g rnd) string {
			return g.str(base62+"_~.", 3) + g.str(digitChars, 1) + "Q~" + g.str(base62+"_~.-", 34)
		}, keys: []string{"AZURE_CLIENT_SECRET", "clientSecret", "azure.com/client-secret"}, wrap: func(g rnd, m string) string { return "AZURE_CLIENT_SECRET=" + m }},
		{typ: "github-pat", val: func(g rnd) string { return g.checksummed("ghp_") }, keys: []string{"GITHUB_TOKEN", "github.com/token", "ci-token"},
			wrap: func(g rnd, m string) string {
				return "integrations:\n  github:\n    - host: github.com\n      token: " + m
			}},
		{typ: "github-fine-grained-pat", val: func(g rnd) string { return "github_pat_" + g.str(base62, 22) + "_" + g.str(base62, 59) },
			keys: []string{"GH_TOKEN", "githubToken"}, wrap: func(g rnd, m string) string { return "export GH_TOKEN=" + m }},
		{typ: "github-oauth-token", val: func(g rnd) string { return g.checksummed("gho_") }, keys: []string{"oauthToken"},
			wrap: func(g rnd, m string) string { return "Authorization: token " + m }},
		{typ: "github-app-token", val: func(g rnd) string { return g.checksummed("ghs_") }, keys: []string{"installationToken"},
			wrap: func(g rnd, m string) string {
				return "git clone https://x-access-token:" + m + "@github.com/acme/payments.git"
			}},
		{typ: "github-user-to-server-token", val: func(g rnd) string { return g.checksummed("ghu_") }, keys: []string{"userToken"},
			wrap: func(g rnd, m string) string { return "user-to-server token " + m + " (expires in 8h)" }},
		{typ: "github-refresh-token", val: func(g rnd) string { return "ghr_" + g.str(base62, 76) }, keys: []string{"refresh_token"},
			wrap: func(g rnd, m string) string { return "refresh_token=" + m }},
		prefixed("gitlab-pat", "glpat-", base64url, 20, []string{"GITLAB_TOKEN", "gitlab.com/token"}, "gitlab:\n  - host: gitlab.acme.internal\n    token: $"),
		prefixed("gitlab-runner-token", "glrt-", base64url, 20, []string{"RUNNER_TOKEN"}, "gitlab-runner register --token $"),
		prefixed("gitlab-deploy-token", "gldt-", base64url, 20, []string{"deployToken"}, "docker login -u gitlab+deploy-token-12 -p $ registry.gitlab.com"),
		{typ: "slack-bot-token", val: func(g rnd) string {
			return "xoxb-" + g.str(digitChars, 11) + "-" + g.str(digitChars, 13) + "-" + g.str(base62, 24)
		}, keys: []string{"SLACK_BOT_TOKEN", "slack.com/bot-token"}, wrap: func(g rnd, m string) string { return "SLACK_BOT_TOKEN=" + m }},
		{typ: "slack-user-token", val: func(g rnd) string {
			return "xoxp-" + g.str(digitChars, 11) + "-" + g.str(digitChars, 11) + "-" + g.str(digitChars, 13) + "-" + g.str(hexChars, 32)
		}, keys: []string{"slackUserToken"}, wrap: func(g rnd, m string) string { return "legacy user token: " + m }},
		{typ: "slack-webhook-url", url: true, val: func(g rnd) string {
			return "T" + g.str(upperChars+digitChars, 8) + "/B" + g.str(upperChars+digitChars, 10) + "/" + g.str(base62, 24)
		}, wrap: func(g rnd, m string) string { return "https://hooks.slack.com/services/" + m }},
		prefixed("stripe-secret-key", "sk_live_", base62, 24, []string{"STRIPE_SECRET_KEY", "stripe.com/secret-key"}, "stripe:\n  secretKey: $"),
		prefixed("stripe-webhook-secret", "whsec_", base62, 32, []string{"STRIPE_WEBHOOK_SECRET"}, "webhook signing secret $"),
		prefixed("twilio-api-key", "SK", hexChars, 32, []string{"TWILIO_API_KEY"}, "twilio api key sid $"),
		{typ: "twilio-auth-token", val: func(g rnd) string { return g.str(hexChars, 32) }, keys: []string{"TWILIO_AUTH_TOKEN", "twilioAuthToken"},
			wrap: func(g rnd, m string) string { return "TWILIO_AUTH_TOKEN=" + m }},
		{typ: "sendgrid-api-key", val: func(g rnd) string { return "SG." + g.str(base64url, 22) + "." + g.str(base64url, 43) },
			keys: []string{"SENDGRID_API_KEY"}, wrap: func(g rnd, m string) string { return "sendgrid: { apiKey: " + m + " }" }},
		prefixed("mailgun-api-key", "key-", hexChars, 32, []string{"MAILGUN_API_KEY"}, "curl -s --user 'api:$' https://api.mailgun.net/v3/acme.example/messages"),
		{typ: "npm-token", val: func(g rnd) string { return g.checksummed("npm_") }, keys: []string{"NPM_TOKEN"},
			wrap: func(g rnd, m string) string { return "//npm.internal.example/:_authToken=" + m }},
		prefixed("pypi-token", "pypi-AgEIcHlwaS5vcmc", base64url, 110, []string{"TWINE_PASSWORD", "PYPI_TOKEN"}, "[pypi]\nusername = __token__\npassword = $"),
		prefixed("dockerhub-pat", "dckr_pat_", base64url, 27, []string{"DOCKERHUB_TOKEN"}, "echo $ | docker login -u acmeci --password-stdin"),
		prefixed("artifactory-api-key", "AKCp", base62, 69, []string{"ARTIFACTORY_API_KEY", "jfrog.com/api-key"}, "X-JFrog-Art-Api: $"),
		{typ: "datadog-api-key", val: func(g rnd) string { return g.str(hexChars, 32) }, keys: []string{"DD_API_KEY", "datadoghq.com/api-key", "datadogApiKey"},
			wrap: func(g rnd, m string) string { return "DD_API_KEY=" + m }},
		prefixed("newrelic-key", "NRAK-", upperChars+digitChars, 27, []string{"NEW_RELIC_API_KEY", "newrelic.com/api-key"}, "newrelic api key: $"),
		{typ: "pagerduty-key", val: func(g rnd) string { return g.str(hexChars, 32) }, keys: []string{"pagerduty.com/integration-key", "PAGERDUTY_TOKEN"},
			wrap: func(g rnd, m string) string { return "pagerduty integration key: " + m }},
		{typ: "sentry-dsn", url: true, val: func(g rnd) string { return g.str(hexChars, 32) },
			wrap: func(g rnd, m string) string {
				return "https://" + m + "@o" + g.str(digitChars, 6) + ".ingest.sentry.io/" + g.str(digitChars, 7)
			}},
		{typ: "openai-api-key", val: func(g rnd) string { return "sk-proj-" + g.str(base64url, 74) + "T3BlbkFJ" + g.str(base64url, 74) },
			keys: []string{"OPENAI_API_KEY"}, wrap: func(g rnd, m string) string { return "OPENAI_API_KEY=" + m }},
		{typ: "anthropic-api-key", val: func(g rnd) string { return "sk-ant-api03-" + g.str(base64url, 93) + "AA" },
			keys: []string{"ANTHROPIC_API_KEY", "llm.apiKey"}, wrap: func(g rnd, m string) string { return "x-api-key: " + m }},
		prefixed("huggingface-token", "hf_", upperChars+lowerChars, 34, []string{"HF_TOKEN"}, "huggingface-cli login --token $"),
		prefixed("vault-token", "hvs.CAESI", base64url, 86, []string{"VAULT_TOKEN", "vault.hashicorp.com/token"}, "VAULT_TOKEN=$ vault kv get secret/payments"),
		{typ: "jwt", val: func(g rnd) string { return g.jwt() }, keys: []string{"id_token", "backstageToken", "serviceToken"},
			wrap: func(g rnd, m string) string {
				return "curl -H \"Authorization: Bearer " + m + "\" https://backstage.acme.internal/api/catalog/entities"
			}},
		{typ: "url-password", url: true, val: func(g rnd) string { return g.password() },
			wrap: func(g rnd, m string) string {
				return g.pick("https://deploy:", "https://ci-bot:", "ftp://backup:", "smtps://alerts:") + m + "@" + g.pick("artifacts.acme.internal/repository/releases", "files.acme.example/drop", "mail.acme.example:465")
			}},
		{typ: "url-query-secret", url: true, val: func(g rnd) string { return g.str(base62, 32) },
			wrap: func(g rnd, m string) string {
				return "https://" + g.pick("api.partner.example/v2/export?format=csv&api_key=", "grafana.acme.internal/d/abc123/latency?orgId=1&auth_token=", "reports.acme.example/download?id=42&access_token=") + m
			}},
		connKind("conn-postgres", "postgres://orders_app:", "@pg-orders.db.acme.internal:5432/orders?sslmode=require"),
		connKind("conn-mysql", "mysql://inventory:", "@mysql-1.acme.internal:3306/inventory"),
		connKind("conn-mongodb", "mongodb+srv://catalog:", "@cluster0.x7k2p.mongodb.net/catalog?retryWrites=true&w=majority"),
		connKind("conn-redis", "rediss://:", "@cache.acme.internal:6380/0"),
		connKind("conn-amqp", "amqps://events:", "@rabbit.acme.internal:5671/prod"),
		{typ: "conn-jdbc", val: func(g rnd) string { return g.password() }, keys: nil,
			wrap: func(g rnd, m string) string {
				return "jdbc:postgresql://pg.acme.internal:5432/billing?user=billing&password=" + m + "&ssl=true"
			}},
		{typ: "conn-odbc", val: func(g rnd) string { return g.password() },
			wrap: func(g rnd, m string) string {
				return "Server=tcp:acme-sql.database.windows.net,1433;Initial Catalog=ledger;User ID=ledger_rw;Password=" + m + ";Encrypt=True;"
			}},
		{typ: "generic-secret", val: func(g rnd) string { return g.password() },
			keys: []string{"password", "DB_PASSWORD", "client_secret", "acme.io/webhook-secret", "apiKey", "signingKey", "SESSION_SECRET", "adminPassword"},
			wrap: func(g rnd, m string) string {
				return g.pick("password: ", "client_secret: ", "export API_TOKEN=", "db.password=") + m
			}},
		{typ: "generic-keyword-entropy", val: func(g rnd) string { return g.str(hexChars, 32) },
			wrap: func(g rnd, m string) string {
				return g.pick("The staging API token is ", "Use the secret ", "temporary password for the sandbox is ") + m + g.pick(", rotate it monthly.", " until the migration is done", ".")
			}},
		{typ: "http-basic-auth", val: func(g rnd) string {
			return base64.StdEncoding.EncodeToString([]byte("svc-" + g.str(lowerChars, 5) + ":" + g.password()))
		}, wrap: func(g rnd, m string) string { return "Authorization: Basic " + m }},
		{typ: "http-bearer-token", val: func(g rnd) string { return g.str(base64url, 40) },
			wrap: func(g rnd, m string) string { return "-H 'Authorization: Bearer " + m + "'" }},
		prefixed("grafana-token", "glsa_", base62, 32, []string{"GRAFANA_TOKEN"}, "grafana:\n  token: $"),
		prefixed("databricks-token", "dapi", hexChars, 32, []string{"DATABRICKS_TOKEN"}, "databricks configure --token $"),
		prefixed("digitalocean-token", "dop_v1_", hexChars, 64, []string{"DIGITALOCEAN_TOKEN"}, "doctl auth init -t $"),
		prefixed("sonarqube-token", "sqp_", hexChars, 40, []string{"SONAR_TOKEN"}, "sonar.token=$"),
		prefixed("shopify-token", "shpat_", hexChars, 32, []string{"SHOPIFY_ACCESS_TOKEN"}, "X-Shopify-Access-Token: $"),
		prefixed("linear-api-key", "lin_api_", base62, 40, []string{"LINEAR_API_KEY"}, "linear key $"),
		prefixed("age-secret-key", "AGE-SECRET-KEY-1", "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, []string{"SOPS_AGE_KEY"}, "# created: 2024-03-01\n$"),
		{typ: "gradle-credentials", val: func(g rnd) string { return g.password() },
			wrap: func(g rnd, m string) string {
				return "repositories {\n  maven {\n    url \"https://artifacts.acme.internal/releases\"\n    credentials {\n      username " +
					g.pick("'deployer'", "\"ci-publisher\"") + "\n      password " + g.pick("'"+m+"'", "= \""+m+"\"") + "\n    }\n  }\n}"
			}},
		{typ: "dotnet-appsetting-secret", val: func(g rnd) string { return g.password() },
			wrap: func(g rnd, m string) string {
				return "<appSettings>\n  <add key=\"Environment\" value=\"staging\"/>\n  <add key=\"" + g.pick("DbPassword", "SmtpPassword", "LdapBindPassword") + "\" value=\"" + m + "\"/>\n</appSettings>"
			}},
		{typ: "jwt-secret", val: func(g rnd) string { return g.password() },
			wrap: func(g rnd, m string) string {
				return "jwt:\n  issuer: " + g.pick("acme-portal", "https://auth.acme.internal") + "\n  " + g.pick("secret", "secret-key", "signing-key") + ": " + m + "\n  expiration: 3600"
			}},
		{typ: "slack-legacy-bot-token", val: func(g rnd) string {
			return "xoxb-" + g.str(digitChars, 8+g.intn(6)) + "-" + g.str(base62, 24)
		}, keys: []string{"SLACK_BOT_TOKEN", "slack.com/bot-token"}, wrap: func(g rnd, m string) string { return "SLACK_BOT_TOKEN=" + m }},
	}
	for _, p := range []string{"rsa", "rsa-encrypted", "ec", "dsa", "openssh", "pgp", "pkcs8", "encrypted"} {
		p := p
		ks = append(ks, kind{typ: pemType(p), pem: p, val: func(g rnd) string { return g.pem(p, "\n") }, keys: []string{"tls.key", "privateKey", "SSH_PRIVATE_KEY"},
			wrap: func(g rnd, m string) string { return m }})
	}
	return ks
}

func connKind(typ, pre, post string) kind {
	return kind{typ: typ, val: func(g rnd) string { return g.password() }, url: true,
		wrap: func(g rnd, m string) string { return pre + m + post }}
}
