package redact_test

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

const (
	b62  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b64u = b62 + "-_"
	hexc = "0123456789abcdef"
	up36 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

// rs returns a deterministic random string (seeded by its arguments).
func rs(charset string, n int) string {
	if n == 0 || charset == "" {
		return ""
	}
	r := rand.New(rand.NewPCG(uint64(n), uint64(len(charset))*7919+uint64(charset[0])))
	b := make([]byte, n)
	for i := range b {
		b[i] = charset[r.IntN(len(charset))]
	}
	return string(b)
}

func newRedactor(t testing.TB) *redact.Redactor {
	t.Helper()
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pemBlock(label string) string {
	body := base64.StdEncoding.EncodeToString([]byte(rs(b62, 300)))
	var lines []string
	for len(body) > 64 {
		lines = append(lines, body[:64])
		body = body[64:]
	}
	lines = append(lines, body)
	return "-----BEGIN " + label + "-----\n" + strings.Join(lines, "\n") + "\n-----END " + label + "-----"
}

// positives holds, for every rule id, a text in which that rule must redact
// the secret (the second element, which must not survive).
func positives() map[string][2]string {
	pw := "Zq7-" + rs(b62, 14)
	basic := base64.StdEncoding.EncodeToString([]byte("svc-ci:" + pw))
	p := map[string][2]string{}
	add := func(id, text, secret string) { p[id] = [2]string{text, secret} }
	sec := func(id, prefix, charset string, n int, pre, post string) {
		s := prefix + rs(charset, n)
		add(id, pre+s+post, s)
	}
	sec("generic-context", "", b62, 32, "acme-flight SECRET ", "")
	sec("buildkite-token", "bkua_", b62, 40, "BUILDKITE_API_TOKEN: ", "")
	sec("prefect-api-key", "pnu_", b62, 36, "prefect cloud login --key ", "")
	sec("sourcegraph-token", "sgp_", hexc, 40, "SRC_ACCESS_TOKEN=", "")
	sec("segment-token", "sgp_", b62, 64, "segment: ", "")
	sec("brevo-api-key", "xkeysib-"+rs(hexc, 64)+"-", b62, 16, "api-key: ", "")
	sec("shippo-token", "shippo_live_", hexc, 40, "Authorization: ShippoToken ", "")
	sec("square-access-token", "EAAA", b62, 60, "square access token: ", "")
	sec("aws-access-key-id", "AKIA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, "key id ", "")
	sec("aws-secret-access-key", "", b62+"/+", 40, "aws_secret_access_key = ", "")
	sec("aws-session-token", "", b62+"/+", 180, "AWS_SESSION_TOKEN=", "")
	sec("aws-mws-key", "amzn.mws.", "", 0, "", "")
	p["aws-mws-key"] = [2]string{"mws amzn.mws.4ea38b7b-f563-7709-4bae-87aeaf1e5c1c", "amzn.mws.4ea38b7b-f563-7709-4bae-87aeaf1e5c1c"}
	sec("gcp-api-key", "AIza", b64u, 35, "key=", "")
	sec("gcp-oauth-client-secret", "GOCSPX-", b64u, 28, "clientSecret: ", "")
	sec("gcp-oauth-client-secret-legacy", "", b64u, 24, "GOOGLE_CLIENT_SECRET = '", "'")
	sec("gcp-oauth-access-token", "ya29.", b64u, 60, "Authorization: OAuth ", "")
	sa := strings.ReplaceAll(pemBlock("PRIVATE KEY"), "\n", `\n`)
	add("gcp-service-account-key", `{"type": "service_account", "private_key": "`+sa+`", "client_email": "x@y.iam.gserviceaccount.com"}`, sa[40:80])
	sk := base64.StdEncoding.EncodeToString([]byte(rs(b62, 64)))
	add("azure-storage-key", "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey="+sk+";EndpointSuffix=core.windows.net", sk)
	add("azure-sas-token", "https://a.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig="+rs(b62, 43)+"%3D", rs(b62, 43))
	sb := base64.StdEncoding.EncodeToString([]byte(rs(b62, 32)))
	add("azure-shared-access-key", "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey="+sb, sb)
	sec("azure-client-secret", "abc8Q~", b62+"_~.-", 34, "secret ", "")
	sec("azure-devops-pat", "", "abcdefghijklmnopqrstuvwxyz234567", 52, "AZURE_DEVOPS_PAT=", "")
	sec("github-pat", "ghp_", b62, 36, "token ", "")
	add("github-fine-grained-pat", "GH_TOKEN=github_pat_"+rs(b62, 22)+"_"+rs(b62, 59), "github_pat_"+rs(b62, 22))
	sec("github-oauth-token", "gho_", b62, 36, "", "")
	sec("github-user-to-server-token", "ghu_", b62, 36, "", "")
	sec("github-app-token", "ghs_", b62, 36, "", "")
	sec("github-refresh-token", "ghr_", b62, 76, "", "")
	sec("gitlab-pat", "glpat-", b64u, 20, "", "")
	sec("gitlab-deploy-token", "gldt-", b64u, 20, "", "")
	sec("gitlab-runner-token", "glrt-", b64u, 20, "", "")
	sec("gitlab-runner-registration-token", "GR1348941", b64u, 20, "", "")
	sec("gitlab-pipeline-trigger-token", "glptt-", hexc, 40, "", "")
	sec("gitlab-oauth-secret", "gloas-", b64u, 64, "", "")
	sec("gitlab-other-token", "glcbt-", b64u, 24, "", "")
	sec("slack-bot-token", "xoxb-", "", 0, "", "")
	p["slack-bot-token"] = [2]string{"xoxb-12345678901-1234567890123-" + rs(b62, 24), rs(b62, 24)}
	p["slack-user-token"] = [2]string{"xoxp-12345678901-12345678901-1234567890123-" + rs(hexc, 32), rs(hexc, 32)}
	p["slack-app-token"] = [2]string{"xapp-1-A0123456789-1234567890123-" + rs(hexc, 64), rs(hexc, 64)}
	p["slack-config-token"] = [2]string{"xoxe.xoxp-1-" + rs(up36, 160), rs(up36, 160)}
	p["slack-legacy-bot-token"] = [2]string{"this is the api token for the bot user: xoxb-153445930147-" + rs(b62, 24), rs(b62, 24)}
	p["slack-legacy-token"] = [2]string{"xoxs-1234567890-" + rs(b62, 30), rs(b62, 30)}
	p["slack-webhook-url"] = [2]string{"https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEFGH/" + rs(b62, 24), rs(b62, 24)}
	sec("stripe-secret-key", "sk_live_", b62, 24, "", "")
	sec("stripe-webhook-secret", "whsec_", b62, 32, "", "")
	sec("square-token", "sq0atp-", b64u, 22, "", "")
	p["braintree-access-token"] = [2]string{"access_token$production$" + rs("abcdefghijklmnopqrstuvwxyz0123456789", 16) + "$" + rs(hexc, 32), rs(hexc, 32)}
	sec("shopify-token", "shpat_", hexc, 32, "", "")
	sec("twilio-api-key", "SK", hexc, 32, "sid ", "")
	sec("twilio-auth-token", "", hexc, 32, "TWILIO_AUTH_TOKEN=", "")
	add("sendgrid-api-key", "SG."+rs(b64u, 22)+"."+rs(b64u, 43), rs(b64u, 43))
	sec("mailgun-api-key", "key-", hexc, 32, "", "")
	sec("mailchimp-api-key", "", hexc, 32, "", "-us21")
	sec("telegram-bot-token", "123456789:AA", b64u, 33, "", "")
	sec("discord-webhook-url", "", b64u, 68, "https://discord.com/api/webhooks/112233445566778899/", "")
	sec("teams-webhook-url", "", hexc, 60, "https://acme.webhook.office.com/webhookb2/", "")
	sec("npm-token", "npm_", b62, 36, "", "")
	sec("npmrc-auth", "", b62, 30, "//npm.pkg.example/:_authToken=", "")
	sec("pypi-token", "pypi-AgEIcHlwaS5vcmc", b64u, 80, "", "")
	sec("dockerhub-pat", "dckr_pat_", b64u, 27, "", "")
	add("docker-config-auth", `{"auths":{"registry.acme.internal":{"auth":"`+basic+`"}}}`, basic)
	sec("artifactory-api-key", "AKCp", b62, 69, "", "")
	sec("artifactory-reference-token", "cmVmd", b62, 59, "", "")
	sec("nuget-api-key", "oy2", "abcdefghijklmnopqrstuvwxyz0123456789", 43, "", "")
	sec("rubygems-api-key", "rubygems_", hexc, 48, "", "")
	sec("pulumi-token", "pul-", hexc, 40, "", "")
	sec("terraform-cloud-token", rs(b62, 14)+".atlasv1.", b64u, 67, "", "")
	sec("circleci-token", "CCIPAT_"+rs(b62, 22)+"_", hexc, 40, "", "")
	sec("sonarqube-token", "sqp_", hexc, 40, "", "")
	sec("databricks-token", "dapi", hexc, 32, "", "")
	sec("datadog-api-key", "", hexc, 32, "DD_API_KEY=", "")
	sec("newrelic-key", "NRAK-", up36, 27, "", "")
	sec("newrelic-license-key", rs(hexc, 36), "", 0, "", "NRAL")
	p["newrelic-license-key"] = [2]string{rs(hexc, 36) + "NRAL", rs(hexc, 36)}
	sec("pagerduty-key", "", hexc, 32, "pagerduty integration key: ", "")
	add("sentry-dsn", "https://"+rs(hexc, 32)+"@o123.ingest.sentry.io/456", rs(hexc, 32))
	sec("sentry-auth-token", "sntryu_", hexc, 64, "", "")
	sec("grafana-token", "glsa_"+rs(b62, 32)+"_", hexc, 8, "", "")
	sec("dynatrace-token", "dt0c01."+rs(up36, 24)+".", up36, 64, "", "")
	add("openai-api-key", "sk-proj-"+rs(b64u, 74)+"T3BlbkFJ"+rs(b64u, 74), rs(b64u, 74))
	add("anthropic-api-key", "sk-ant-api03-"+rs(b64u, 93)+"AA", rs(b64u, 93))
	sec("huggingface-token", "hf_", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34, "", "")
	sec("groq-api-key", "gsk_", b62, 52, "", "")
	sec("replicate-token", "r8_", b62, 37, "", "")
	sec("fullstory-api-key", "na1.", b62+"+/", 100, "FULLSTORY_API_KEY=", "")
	add("telegram-bot-token-context", "tgram://1234567890:"+rs(b64u, 35)+"/chat", rs(b64u, 35))
	sec("perplexity-api-key", "pplx-", b62, 48, "", "")
	sec("vault-token", "hvs.CAESI", b64u, 86, "", "")
	sec("vault-legacy-token", "s.", b62, 24, "VAULT_TOKEN=", "")
	sec("doppler-token", "dp.st.", b62, 43, "", "")
	sec("age-secret-key", "AGE-SECRET-KEY-1", "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, "", "")
	sec("atlassian-api-token", "ATATT3", b64u, 180, "", "")
	sec("bitbucket-app-password", "ATBB", b62, 32, "", "")
	sec("linear-api-key", "lin_api_", b62, 40, "", "")
	sec("notion-token", "ntn_12345678901", b62, 35, "", "")
	sec("postman-api-key", "PMAK-"+rs(hexc, 24)+"-", hexc, 34, "", "")
	sec("digitalocean-token", "dop_v1_", hexc, 64, "", "")
	sec("supabase-token", "sbp_", hexc, 40, "", "")
	sec("flyio-token", "fo1_", b64u, 43, "", "")
	sec("mapbox-secret-token", "sk.eyJ1IjoiYWNtZSIsImEiOiJja2FiYyJ9.", b64u, 22, "", "")
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyOmRlZmF1bHQvamRvZSJ9." + rs(b64u, 43)
	add("jwt", "Authorization: Bearer "+jwt, jwt)
	for id, label := range map[string]string{"private-key-rsa": "RSA PRIVATE KEY", "private-key-ec": "EC PRIVATE KEY", "private-key-dsa": "DSA PRIVATE KEY",
		"private-key-openssh": "OPENSSH PRIVATE KEY", "private-key-pgp": "PGP PRIVATE KEY BLOCK", "private-key-pkcs8": "PRIVATE KEY",
		"private-key-encrypted": "ENCRYPTED PRIVATE KEY", "private-key-other": "SSH2 ENCRYPTED PRIVATE KEY"} {
		blk := pemBlock(label)
		add(id, "key: |\n"+blk+"\n", strings.Split(blk, "\n")[2])
	}
	p["putty-private-key"] = [2]string{"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\n" + rs(b62, 44) + "\nPrivate-MAC: " + rs(hexc, 64), rs(b62, 44)}
	unseal := base64.StdEncoding.EncodeToString([]byte(rs(b62, 33)))
	add("vault-unseal-key", "Unseal Key 2: "+unseal, unseal)
	okta := "00" + rs(b64u, 40)
	add("okta-api-token", "Authorization: SSWS "+okta, okta)
	add("okta-api-token-context", "okta_api_token = "+okta, okta)
	sec("dependency-track-api-key", "odt_", b62, 32, "", "")
	sec("twitch-stream-key", "live_126031192_", b62, 30, "", "")
	sec("salesforce-access-token", "00DE0X0A0M0PeLE!", b62+"._", 96, "", "")
	tb := rs("abcdefghijklmnopqrstuvwxyz0123456789", 20)
	add("thingsboard-access-token", "https://thingsboard.cloud/api/v1/"+tb+"/telemetry", tb)
	tn := "9-" + rs(b62, 64)
	add("truenas-api-key", `{"msg":"method","method":"auth.login_with_api_key","params":["`+tn+`"]}`, tn)
	sec("django-secret-key", "django-insecure-%(", b62+"^!%(+=@&*$", 48, "SECRET_KEY = '", "'")
	add("sonarqube-legacy-token", "mvn sonar:sonar -Dsonar.login="+rs(hexc, 40), rs(hexc, 40))
	sec("azure-devops-pat-v2", rs(b62, 52)+"JQQJ99"+rs(b62, 18)+"AZDO", b62, 4, "ADO_PAT=", "")
	sec("cratesio-api-token", "cio", b62, 32, "CARGO_REGISTRY_TOKEN=", "")
	sec("tavily-api-key", "tvly-", b62, 32, "", "")
	sec("hubspot-private-app-token", "pat-na1-"+rs(hexc, 8)+"-"+rs(hexc, 4)+"-"+rs(hexc, 4)+"-"+rs(hexc, 4)+"-", hexc, 12, "HUBSPOT_ACCESS_TOKEN=", "")
	sec("elevenlabs-api-key", "sk_", hexc, 48, "xi-api-key: ", "")
	sec("clickup-token", "pk_8675309_", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", 32, "Authorization: ", "")
	sec("frameio-token", "fio-u-", b64u, 64, "FRAMEIO_TOKEN=", "")
	sec("fleetbase-api-key", "flb_live_", b62, 20, "fleetbase: ", "")
	sec("pagarme-api-key", "ak_live_", b62, 30, "PAGARME_API_KEY=", "")
	sec("nightfall-api-key", "NF-", b62, 32, "nightfall: ", "")
	bcrypt := "$2b$12$" + rs("./"+b62, 53)
	add("password-hash", "admin:"+bcrypt+":19000:0:99999:7:::", bcrypt)
	cliPw := "Qm7" + rs(b62, 11)
	add("cli-password", `psexec \build01 -u ACME\deploy -p `+cliPw+` cmd /c whoami`, cliPw)
	sec("jina-api-key", "jina_"+rs(hexc, 32), b62, 28, "", "")
	sec("adafruit-io-key", "aio_", b62, 28, "#define IO_KEY \"", "\"")
	litPw := "Tq4" + rs(b62, 9)
	add("password-literal", "The staging password for user 'deploy' is '"+litPw+"', ask #ops before changing it.", litPw)
	pemB64 := base64.StdEncoding.EncodeToString([]byte(pemBlock("EC PRIVATE KEY")))
	add("private-key-base64-pem", "tls.key: "+pemB64, pemB64[40:80])
	add("url-password", "https://deploy:"+pw+"@artifacts.acme.internal/repo", pw)
	add("url-query-secret", "https://api.example.com/export?format=csv&api_key="+rs(b62, 32), rs(b62, 32))
	add("conn-postgres", "postgresql://app:"+pw+"@db:5432/orders", pw)
	add("conn-mysql", "mysql://app:"+pw+"@db:3306/inv", pw)
	add("conn-mongodb", "mongodb+srv://app:"+pw+"@cluster0.abc.mongodb.net/x", pw)
	add("conn-redis", "rediss://:"+pw+"@cache:6380/0", pw)
	add("conn-amqp", "amqps://ev:"+pw+"@mq:5671/prod", pw)
	add("conn-mssql", "sqlserver://sa:"+pw+"@sql:1433?database=ledger", pw)
	add("conn-jdbc", "jdbc:mysql://db:3306/app?user=app&password="+pw, pw)
	add("conn-odbc", "Driver={ODBC Driver 18};Server=tcp:x,1433;Database=l;Uid=u;Pwd="+pw+";", pw)
	add("http-basic-auth", "Authorization: Basic "+basic, basic)
	add("http-bearer-token", "Authorization: Bearer "+rs(b64u, 40), rs(b64u, 40))
	add("generic-secret", "client_secret: "+pw, pw)
	add("gradle-credentials", "maven {\n  credentials {\n    username 'deploy'\n    password '"+pw+"'\n  }\n}", pw)
	add("dotnet-appsetting-secret", `<add key="FromEmailAddress" value="ops@acme.test"/>`+"\n"+`<add key="FromEmailPassword" value="Prestigitariu$"/>`, "Prestigitariu$")
	add("jwt-secret", "jwt:\n  ttl: 3600\n  secret: \"development#product\"\n", "development#product")
	add("android-buildconfig-secret", "buildConfigField 'String' , 'MAPS_API_KEY' , '\""+rs(hexc, 32)+"\"'", rs(hexc, 32))
	add("netrc-password", "machine git.acme.internal\n  login ci-bot\n  password "+pw+"\n", pw)
	boot := rs("abcdefghijklmnopqrstuvwxyz0123456789", 6) + "." + rs("abcdefghijklmnopqrstuvwxyz0123456789", 16)
	add("kubernetes-bootstrap-token", "kubeadm join 10.0.0.5:6443 --token "+boot+" --discovery-token-unsafe-skip-ca-verification", boot)
	add("jenkins-crumb", "curl -X POST -H 'Jenkins-Crumb:"+rs(hexc, 32)+"' https://ci.acme.internal/job/x/build", rs(hexc, 32))
	add("jenkins-setup-password", "Please use the following password to proceed to installation:\n\n"+rs(hexc, 32)+"\n", rs(hexc, 32))
	add("codeclimate-reporter-id", "env:\n  CC_TEST_REPORTER_ID: "+rs(hexc, 64), rs(hexc, 64))
	add("postmark-token", `postmarkServerToken: "`+rs(hexc, 8)+"-"+rs(hexc, 4)+"-4"+rs(hexc, 3)+"-a"+rs(hexc, 3)+"-"+rs(hexc, 12)+`"`, rs(hexc, 12))
	add("http-authorization-bearer", "Authorization: Bearer mF_"+rs(b62, 5)+".Qx", rs(b62, 5))
	add("generic-assigned", "ZORBIT="+rs(b62, 40), rs(b62, 40))
	add("generic-keyword-entropy", "the staging token is "+rs(hexc, 20)+"Q9z"+rs(b62, 12)+" for now", rs(hexc, 20))
	return p
}

func TestEveryRuleHasAPositiveCase(t *testing.T) {
	p := positives()
	rules := newRedactor(t).Rules()
	if len(rules) < 60 {
		t.Fatalf("%d rules, want at least 60", len(rules))
	}
	for _, ri := range rules {
		if _, ok := p[ri.ID]; !ok {
			t.Errorf("rule %s has no positive test case", ri.ID)
		}
		if ri.Family == "" || ri.Description == "" {
			t.Errorf("rule %s lacks family or description", ri.ID)
		}
	}
}

func TestRulePositives(t *testing.T) {
	r := newRedactor(t)
	for id, tc := range positives() {
		t.Run(id, func(t *testing.T) {
			out, rep := r.Text(tc[0])
			if rep.Counts[id] == 0 {
				t.Fatalf("rule %s did not fire on %.120q\noutput %.200q\ncounts %v", id, tc[0], out, rep.Counts)
			}
			if strings.Contains(out, tc[1]) {
				t.Fatalf("secret part %.40q survived: %.200q", tc[1], out)
			}
			if !strings.Contains(out, "[REDACTED:"+id+"]") {
				t.Fatalf("no marker for %s in %.200q", id, out)
			}
		})
	}
}

func TestRuleNegatives(t *testing.T) {
	r := newRedactor(t)
	tests := []struct{ name, in string }{
		// Documented samples that keep a provider's format (AKIAIOSFODNN7EXAMPLE,
		// ghp_xxxx…) are redacted since the format vouches for a match
		// (TestFormatVouches); a stand-in without the format stays.
		{"placeholder token", "token: xxxxxxxxxxxxxxxxxxxxxxxx"},
		{"EAAA without Square", "layer: EAAA" + strings.Repeat("Qk9", 20)},
		{"sgp_ of the wrong length", "sgp_0123"},
		{"bkua_ too short", "bkua_ab12cd34"},
		{"shippo prefix without a token", "shippo_live_mode: true"},
		{"xkeysib- without its suffix", "xkeysib-notes"},
		{"ak_live_ of the wrong length", "ak_live_" + strings.Repeat("Qk9", 8)},
		{"NF- of the wrong length", "NF-" + strings.Repeat("Qk9", 12)},
		{"NF- glued to a word", "CONF-" + strings.Repeat("Qk9", 10) + "xy"},
		{"sbp_ of the wrong length", "sbp_" + strings.Repeat("a1", 19)},
		{"telegram token of the wrong length", "telegram: 1234567890:" + strings.Repeat("Qk9", 11)},
		{"telegram id without its keyword", "ratio 1234567890:h3YLlUHP8STgTic38bCZXDJq6s05ERgsaMx"},
		{"r8_ too short", "r8_" + strings.Repeat("Qk9", 12)},
		{"na1. too short", "na1." + strings.Repeat("Qk9+", 20)},
		{"na1. in a host name", "https://na1.salesforce.com/services/data"},
		{"aws secret stand-in of the wrong length", "aws_secret_access_key = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaend"},
		{"env reference", "password: ${DB_PASSWORD}"},
		{"template", `apiKey: "{{ secrets.API_KEY }}"`},
		{"angle placeholder", "client_secret: <your-client-secret>"},
		{"changeme", "secret: changeme"},
		{"uuid under a key that names no token", "licenseKey: 123e4567-e89b-42d3-a456-426614174000"},
		{"git sha in prose", "commit 3f9c2a7e1b4d8f6a0c5e9b2d7a4f1c8e6b3d0a9f fixed the token refresh"},
		{"sri integrity", `"integrity": "sha512-Q5gDkP7pHzv3t8m+7zK0fM0e0h9eA8Jc3Yb0VZ+Q1b3u7aJxgJ2Kq7pT9wYyZl9yXg1k=="`},
		{"docker digest", "image@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"stripe publishable", "pk_live_51HabcdefghijklmnopqrstuvWXYZ"},
		{"url without password", "https://jdoe@github.com/acme/x.git and postgres://localhost:5432/db"},
		{"url placeholder password", "postgres://user:${DB_PASSWORD}@localhost/db mongodb://a:<password>@h/x"},
		{"password given as a variable or template", "credentials {\n  password \"${repoPassword}\"\n}"},
		{"command-line password stand-in", "psexec \\\\host -u DOMAIN\\admin -p <password> cmd\nmysql --password ******** -h db"},
		{"jwt block without a secret", "jwt:\n  ttl: 3600\n  issuer: acme\n"},
		{"appSettings value that is a reference", `<add key="DbPassword" value="${DB_PASSWORD}"/>`},
		{"slug", "payment-token-service and vault-secret-reader-7d9f8b6c4-x2x9z"},
		{"prose", "Use the token bucket algorithm; password reset emails; the API key goes in a header."},
		{"semver", "secret_version: 1.24.3-rc.1+build.5"},
		{"secret names", "secretName: payments-db-credentials\ntokenUrl: https://auth.example/token\nkeyId: kid-2024"},
		{"vault path", "secret: secret/data/payments/prod"},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----"},
		{"pagination token param", "https://api.example.com/items?page_token=CiAKGjBpNDd2Nmp2Zml2cXRwYjBp&pageSize=50"},
		{"base64 image", "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="},
		{"bearer placeholder", "Authorization: Bearer <token>"},
		{"masked dsn password", "host=db port=3306 user=apache password=###### dbname=apache_auth"},
		{"netrc password reference", "machine api.acme.internal login ci password $NETRC_PASSWORD"},
		{"bootstrap token secret reference", "token-id: ${TOKEN_ID}\ntoken-secret: ${TOKEN_SECRET}"},
		{"bearer scheme named in prose", "Authorization: Bearer tokens are issued by the gateway"},
		{"postmark without a uuid", "postmark: enabled"},
		{"angle placeholder unclosed", "client_secret: <your-client-secret"},
		{"angle placeholder inside", "api_key: key-<INSERT-KEY-HERE>-v2"},
		{"html-escaped angle placeholder", `"password": "&lt;YOURPASSWORD&gt;"`},
		{"shell-concatenated reference", `echo 'export DATABASE_PASSWORD="'$PRECOMPILE_PASSWORD'"' >> .env`},
		{"appSettings key attribute names a setting", `<add key="ConnectionString_B2B" value="Server=db;Database=B2B;Trusted_Connection=True" />`},
		{"hubspot token of the wrong form", "pat-na1-1234567-1234-1234-1234-123456789012 and pat-us1-ab12cd34-ab12-ab12-ab12-ab12cd34ef56"},
		{"sk_ with 47 hex digits", "sk_" + rs(hexc, 47)},
		{"clickup pk_ with a short id", "pk_123456_" + rs("0123456789ABCDEF", 32)},
		{"fio-u- too short", "fio-u-" + rs(b62, 40)},
		{"flb_test_ key", "flb_test_" + rs(b62, 20)},
		{"buildConfigField with a non-secret name", "buildConfigField 'String', 'BUILD_FLAVOR_ID', '\"" + rs(hexc, 32) + "\"'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, rep := r.Text(tc.in)
			if rep.Total() != 0 || out != tc.in {
				t.Fatalf("unexpected redaction %v: %q", rep.Counts, out)
			}
		})
	}
}

func TestReplacementKeepsNonSecretParts(t *testing.T) {
	r := newRedactor(t)
	tests := []struct{ name, in, want string }{
		{"url keeps host", "https://deploy:Zq7xP9mK2vL8@artifacts.acme.internal/repo", "https://deploy:[REDACTED:url-password]@artifacts.acme.internal/repo"},
		{"connection keeps database", "postgres://app:Zq7xP9mK2vL8@db:5432/orders?sslmode=require", "postgres://app:[REDACTED:conn-postgres]@db:5432/orders?sslmode=require"},
		{"query keeps other params", "https://x.example/e?format=csv&api_key=Zq7xP9mK2vL8Zq7xP9mK2vL8&page=2", "https://x.example/e?format=csv&api_key=[REDACTED:url-query-secret]&page=2"},
		{"percent-encoded password", "mysql://app:p%40ss%21Zq7xP9mK@db/inv", "mysql://app:[REDACTED:conn-mysql]@db/inv"},
		{"folded pem", `KEY="-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5hkA7dX8Ugl5AoAoGCCqGSM49\nAwEHoUQDQgAE\n-----END EC PRIVATE KEY-----"`, `KEY="[REDACTED:private-key-ec]"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := r.Text(tc.in); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestAlternateForms: older or regional forms of a provider's token are
// caught by the provider's rule.
func TestAlternateForms(t *testing.T) {
	r := newRedactor(t)
	legacyGrafana := base64.StdEncoding.EncodeToString([]byte(`{"k":"` + rs(b62, 32) + `","n":"deploy","id":1}`))
	tests := []struct{ name, in, rule string }{
		{"grafana legacy api key", "GRAFANA_API_KEY=" + legacyGrafana, "grafana-token"},
		{"new relic admin key", "admin_access: NRAA-" + rs(hexc, 27), "newrelic-key"},
		{"new relic eu license key", "license: eu01xx" + rs(hexc, 30) + "NRAL", "newrelic-license-key"},
		{"doppler scim token", "dp.scim." + rs(b62, 43), "doppler-token"},
		{"doppler service token with environment", "dp.st.prd." + rs(b62, 43), "doppler-token"},
		{"unseal key on a command line", "kubectl exec vault-0 -- vault operator unseal " + base64.StdEncoding.EncodeToString([]byte(rs(b62, 32))), "vault-unseal-key"},
		{"sonar login as an argument", "withSonarQubeEnv { sh \"mvn sonar:sonar\" }; props.put('sonar.login', '" + rs(hexc, 40) + "')", "sonarqube-legacy-token"},
		{"vault token as a command-line flag", "deploy -vaultToken s." + rs(b62, 24), "vault-legacy-token"},
		{"okta token under a secret name", "okta_secret: 00" + rs(b64u, 40), "okta-api-token-context"},
		{"okta token as a terraform variable default", "variable \"okta_api_token\" {\n  default = \"00" + rs(b64u, 40) + "\"\n}", "okta-api-token-context"},
		{"bootstrap token secret field", "token-id: " + rs("abcdefghijklmnopqrstuvwxyz0123456789", 6) + "\ntoken-secret: " + rs("abcdefghijklmnopqrstuvwxyz0123456789", 16), "kubernetes-bootstrap-token"},
		{"legacy teams webhook", "https://outlook.office.com/webhook/" + rs(hexc, 32) + "@" + rs(hexc, 32) + "/IncomingWebhook/" + rs(hexc, 32), "teams-webhook-url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rep := r.Text(tc.in)
			if rep.Counts[tc.rule] == 0 {
				t.Fatalf("rule %s did not fire: %v", tc.rule, rep.Counts)
			}
		})
	}
}

// TestQuotedValueTakenWhole: a quoted secret that holds ';', ',', '<', '&' or
// a backquote is redacted up to its closing quote, not cut at that byte with
// the rest left in clear.
func TestQuotedValueTakenWhole(t *testing.T) {
	r := newRedactor(t)
	tests := []struct{ name, in, want string }{
		{"semicolon in double quotes", `jwtsecret: "7aD0}/vYR)T;W\5]EBrf;_&k"`, `jwtsecret: "[REDACTED:generic-secret]"`},
		{"backquote in single quotes", "password = '`123QWERasdf'", "password = '[REDACTED:generic-secret]'"},
		{"comma in an env value", `API_SECRET="Zq7,xP9;mK2&vL8"`, `API_SECRET="[REDACTED:generic-secret]"`},
		{"lone '>' inside a random value", `jwtsecret: '7aD"}/vYR)T;W5]EBrf;_&k>qX??]G&3CF=;@vyrVBp'`, `jwtsecret: '[REDACTED:generic-secret]'`},
		{"escaped quotes", `{\"client_secret\": \"Zq7xP9;mK2vL8wR4\"}`, `{\"client_secret\": \"[REDACTED:generic-secret]\"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := r.Text(tc.in); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestLiteralsInPasswordPositions: a position that proves a password (a
// URL's userinfo, a connection string's Password=/Pwd=, a command line's
// -p/-Password, a Gradle credentials password, a key named password) holds
// the password as written, so every literal there is redacted, whatever word
// it is; only references (variables, templates), masks and no value are kept.
func TestLiteralsInPasswordPositions(t *testing.T) {
	r := newRedactor(t)
	tests := []struct {
		kind     string
		literals []string // each redacted
		refs     []string // each kept
	}{
		{"url userinfo",
			[]string{"amqp://guest:guest@localhost:5672/", "postgres://user:password@localhost:5432/db", "postgresql://user:secret@localhost:5433/database",
				"amqp://ci:letmein@localhost:5672/", "redis://app:DB_PASSWORD@cache:6379", "mongodb://admin:xyzzy@db/test"},
			[]string{"postgres://user:${DB_PASSWORD}@localhost/db", "mongodb://admin:<password>@cluster0.example.net/test",
				"redis://:$REDIS_PASSWORD@cache:6379", "mysql://root:****@db/x", "postgres://u:{password}@h/db", "https://jdoe@github.com/acme/x.git"}},
		{"connection string",
			[]string{"Provider=SQLNCLI;Server=db,1433;Database=app;Uid=myUsername;Pwd=myPassword;",
				"Data Source=db;Initial Catalog=app;User ID=sa;Password=SOME_PASSWORD;", // after '=' a constant's name is what is typed
				"Server=host;Port=5432;User Id=username;Password=secret;Database=app;", "Server=db;Uid=sa;Pwd={p;ss word};"},
			[]string{"Server=db;Uid=sa;Pwd=%SQL_PWD%;", "server=db;uid=x;pwd=#{datastore['DBPASSWORD']}", "host=db port=3306 user=apache password=###### dbname=a",
				"Server=db;Uid=sa;Pwd={{ .Values.pwd }};"}},
		{"command line",
			// A line does not say which shell runs it: cmd.exe passes "$Password"
			// as typed, bash passes "%nothing%" as typed. Only what no shell
			// passes as typed is kept.
			[]string{"psexec \\\\h -u DOMAIN\\admin -p PASSWORD cmd", "psexec \\\\h -u admin -p SOME_PASSWORD cmd", "Connect-VIServer h -User u -Password VMware1!",
				"psExec \\\\h -u User -p $Password -i calc.exe", "PsExec.exe \\\\h -u D\\U -p %nothing% -i 2", `Connect-VIServer "$e" -User "$u" -Password "$password"`,
				"Connect-VIServer $h -user $u -password $ESXipass", "psexec \\\\h -u admin -p ${PW} cmd"},
			[]string{"psexec \\\\h -u admin -p <password> cmd", "psexec \\\\h -u admin -p **** cmd", "mysql --password=xxxxxxxx -h db"}},
		{"gradle credentials",
			[]string{"credentials {\n  username 'user'\n  password 'password'\n}", "credentials {\n  username \"SOME_USERNAME\"\n  password \"SOME_PASSWORD\"\n}"},
			[]string{"credentials {\n  password \"${repoPassword}\"\n}", "credentials {\n  password project.findProperty('repoPassword')\n}",
				"credentials {\n  password = System.getenv(\"REPO_PASSWORD\")\n}"}},
		{"key named password",
			[]string{"password = open_sesame", "password = 'open sesame'", "AUTO_SESSION_PASSWORD=mypassword", "password = 'abcdef123456'",
				`"AdminPassword": "thisismypassword"`, `password: "SOME_PASSWORD"`, "$mail->Password   = 'secret';", "password = 'super$ecret'",
				"password: guest", "DB_PASS=admin", "smtp_password = 'pw01'"}, // three to five letters and digits under a password name
			[]string{"password = ${DB_PASSWORD}", "password = env.PERKEEP_TEST_PASSWORD", "password = DB_PASSWORD", "password = super$ecret",
				"password: ********", "password: xxxxxxxx", "password: abc...", "password: null", "password: true", "password: /run/secrets/db",
				`password = "123"`, "password: none", "password: yes", "password = $pw", "password = +new", "pwd = (char *) p;",
				"- password: any kind of string", "the password: set it in the vault",
				`sb.append("MasterUserPassword: " + getMasterUserPassword() + ",");`, `"//localhost:1337/:_password = "+new Buffer("feast")`,
				"this.addPassword = '#add-password';", `put '/forgot-password' => "cms/sites/passwords#update"`}},
		{"prose and code",
			[]string{"the password is 'changeme' until the first login", `New-Object DirectoryServices.DirectoryEntry("LDAP://10.0.0.1","domain\user", "secret")`},
			[]string{"the password is '<your-password>'", `if password == "" {`}},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			for _, in := range tc.literals {
				if out, rep := r.Text(in); rep.Total() == 0 {
					t.Errorf("literal kept: %q", out)
				}
			}
			for _, in := range tc.refs {
				if out, rep := r.Text(in); rep.Total() != 0 {
					t.Errorf("reference redacted %v: %q", rep.Counts, out)
				}
			}
		})
	}
}

// TestPasswordJSONLeaves: a JSON string under a password key is a literal
// (a YAML scalar has no variables), a passphrase may hold blanks; a key
// that merely concerns a password (passwordSecret) proves nothing.
func TestPasswordJSONLeaves(t *testing.T) {
	r := newRedactor(t)
	for in, want := range map[string]bool{
		`{"password":"SOME_PASSWORD"}`:                                true,
		`{"db":{"password":"correct horse battery staple"}}`:          true,
		`{"password":"password"}`:                                     true,
		`{"password":"${DB_PASSWORD}"}`:                               false,
		`{"password":"********"}`:                                     false,
		`{"passwordSecret":"payments-db-credentials"}`:                false,
		`{"db_password":"guest"}`:                                     true, // short, but a password name holds it
		`{"metadata":{"annotations":{"ldap/bind-password":"admin"}}}`: true,
		`{"password":"123"}`:                                          false,
		`{"password":"yes"}`:                                          false,
		`{"passwordMinLength":"12"}`:                                  false,
	} {
		out, rep, err := r.JSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Total() > 0; got != want {
			t.Errorf("%s: redacted=%v want %v (%s)", in, got, want, out)
		}
	}
}

// TestDottedValueUnderSecretName: a random value with dots under a secret
// name is a secret; a host or property path with dots is not.
func TestDottedValueUnderSecretName(t *testing.T) {
	r := newRedactor(t)
	for v, want := range map[string]bool{
		"e*6.aaTz.3A~FG4hdGTaBWp":  true, // a generated password: '*' and '~' are no name's characters
		"db.internal.example":      false,
		"com.acme.payments.Client": false,
		"api.eu1.example":          false,
	} {
		out, _, err := r.KeyedValue("client_secret", v)
		if err != nil {
			t.Fatal(err)
		}
		if got := out != v; got != want {
			t.Errorf("client_secret=%s: redacted=%v, want %v (%s)", v, got, want, out)
		}
	}
}

// TestGlueBoundaries: a provider prefix glued to a word is found where its
// format allows; a short plain prefix needs '_' or punctuation before it,
// and a body that reads as words is not a token glued to a word.
func TestGlueBoundaries(t *testing.T) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	found := []string{
		"bogus_sk_live_4eC39HqLyjWDarjtT1zdp7dc",
		"prodghp_R4nd0mT0kenW1thD1g1tsAbCdEfGhIjKlMnO",
		"9AKIAQ2WXYZ4ABCDEFGHJ",
		"x_cio3f9A8b7C6d5E4f3A2b1C0d9E8f7A6b5C",
		"svc_eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
		"xyzabc1Q~abcdefghijklmnopqrstuvwxyz01234",
		"deploySK0123456789abcdef0123456789abcdef",
	}
	for _, s := range found {
		if out, _ := r.Text(s); !strings.Contains(out, "[REDACTED:") {
			t.Errorf("glued token kept: %q -> %q", s, out)
		}
	}
	kept := []string{
		"framework_test_TestSomethingVeryLongNameHere", // rk_test_ after a letter, a body of words
		"xcio3f9A8b7C6d5E4f3A2b1C0d9E8f7A6b5C",         // a short plain prefix after a letter
		"2oy2abcdefghijklmnopqrstuvwxyz0123456789abcdefg",
		"helpersk_live_somefunctionnamethatislong",
	}
	for _, s := range kept {
		if out, _ := r.Text(s); out != s {
			t.Errorf("look-alike redacted: %q -> %q", s, out)
		}
	}
}

// TestContextShapes: a credential-shaped value of a vendor no rule names,
// next to a credential word, in every shape secrets are written in, is
// redacted; look-alikes of the same shapes are not.
func TestContextShapes(t *testing.T) {
	r := newRedactor(t)
	v := "q8Xv2LmT9zRk4WbN7cJd3HsF6pYa1GeU" // 32 base-62 characters
	hex := "9b1f0c7e4a2d8e6f3b5c1a9d7e2f4b80"
	shapes := map[string]string{
		"yaml":              "acmepay:\n  apiKey: " + v + "\n",
		"yaml vendor key":   "zorbit_key: " + v,
		"json":              `{"zorbit": {"token": "` + v + `"}}`,
		"env":               "ZORBIT_API_TOKEN=" + v,
		"env export":        "export ZORBIT_SECRET=" + v,
		"properties":        "zorbit.secret=" + v,
		"toml":              "[zorbit]\napi_key = \"" + v + "\"",
		"hcl":               `zorbit_token = "` + v + `"`,
		"ini":               "[zorbit]\nsecret_key=" + v,
		"shell flag":        "zorbit-cli deploy --api-key " + v + " --region eu",
		"shell flag =":      "zorbit-cli deploy --token=" + v,
		"http header":       "X-Zorbit-Key: " + v,
		"curl header":       `curl -H "X-Zorbit-Api-Key: ` + v + `" https://api.zorbit.invalid/v1`,
		"authorization":     "Authorization: Token " + v,
		"connection string": "Endpoint=https://zorbit.invalid;ApiKey=" + v + ";Region=eu",
		"go":                `client := zorbit.New(zorbitKey, "eu"); zorbitKey := "` + v + `"`,
		"python":            `self.zorbit_secret = '` + v + `'`,
		"js":                `const zorbitToken = "` + v + `";`,
		"java":              `private static final String ZORBIT_ACCESS_TOKEN = "` + v + `";`,
		"ruby":              `config.zorbit_key => "` + v + `"`,
		"markdown table":    "| name | value |\n|---|---|\n| ZORBIT_TOKEN | " + v + " |",
		"vendor-token":      "zorbit-token " + v,
		"vendor.secret":     "zorbit.secret: " + v,
		"x-vendor-key":      "x-zorbit-key: " + v,
		"vendorSECRET":      "zorbitSECRET " + v,
		"vendor access":     "zorbit access token " + hex,
		"glued after word":  "zorbit-PRIVATE-key-" + v,
		"hex under key":     "zorbit_key = " + hex,
		"uuid under token":  "zorbit_token: 3f0c2a9e-7b41-4d6a-9c1e-52b8f0d4a7e3",
		"getenv default":    `zorbit_key = os.environ.get('ZORBIT_API_KEY', '` + v + `')`,
		"call default":      `$key = env("ZORBIT_TOKEN", "` + v + `");`,
	}
	// A quoted literal under a strong name may hold any printable
	// character but a blank (a Django secret key's alphabet).
	wide := "q8X*2#v2L!mT9$zRk4&WbN7%c9Jd"
	if out, _ := r.Text(`ZORBIT_SECRET_KEY = os.environ.get('ZORBIT_SECRET_KEY', '` + wide + `')`); strings.Contains(out, wide) {
		t.Errorf("quoted literal with punctuation kept: %q", out)
	}
	for name, in := range shapes {
		secret := v
		if strings.Contains(in, hex) {
			secret = hex
		}
		if strings.Contains(in, "3f0c2a9e") {
			secret = "3f0c2a9e-7b41-4d6a-9c1e-52b8f0d4a7e3"
		}
		out, _ := r.Text(in)
		if strings.Contains(out, secret) {
			t.Errorf("%s: kept: %q", name, out)
		}
	}
	keyed := map[string]string{"acme.io/zorbit-key": v, "zorbit.com/api-token": v, "acme.io/zorbit.secret": hex}
	for k, val := range keyed {
		out, _, err := r.KeyedValue(k, val)
		if err != nil || out == val {
			t.Errorf("annotation %s: kept %q (%v)", k, out, err)
		}
	}
	lookalikes := []string{
		"keyboard layout 9b1f0c7e4a2d8e6f3b5c1a9d7e2f4b80",
		"commit 9b1f0c7e4a2d8e6f3b5c1a9d7e2f4b80aa11bb22 fixed the token refresh",
		`"integrity": "sha512-q8Xv2LmT9zRk4WbN7cJd3HsF6pYa1GeU+q8Xv2LmT9zRk4WbN7cJd3HsF6pYa1GeU=="`,
		"uid: 3f0c2a9e-7b41-4d6a-9c1e-52b8f0d4a7e3",
		"idempotencyKey: 3f0c2a9e-7b41-4d6a-9c1e-52b8f0d4a7e3",
		"licenseKey: 3f0c2a9e-7b41-4d6a-9c1e-52b8f0d4a7e3",
		"secretName: payments-db-credentials-v2",
		"secretKeyRef:\n  name: zorbit\n  key: api-token",
		"tokenUrl: https://auth.zorbit.invalid/oauth/token",
		"public_key: q8Xv2LmT9zRk4WbN7cJd3HsF6pYa1GeU",
		"pod vault-secret-reader-7d9f8b6c4-x2x9z restarted",
		"source: https://github.com/acme/token-service/tree/9b1f0c7e4a2d8e6f3b5c1a9d7e2f4b80aa11bb22/",
		"api_key_header: X-Zorbit-Api-Key",
		"the access token expires after 3600 seconds",
		"keyId: q8Xv2LmT9zRk4WbN7cJd3HsF6pYa1GeU",
		"image: data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
		"key: node-role.kubernetes.io/control-plane",
		"page_token: q8Xv2LmT9zRk4WbN7cJd3HsF6pYa1GeU",
		// Quoted text that is no literal under a strong name.
		`- echo 'export DATABASE_PASSWORD="'$PRECOMPILE_PASSWORD'"' >> .env`,
		`{passwordLabel:"Password:",rememberMeLabel:"Remember me on this computer"}`,
		`zorbit_secret = "${ZORBIT_SECRET_FROM_VAULT_2024}"`,
		`getenv("ZORBIT_TOKEN", "")`,
	}
	for _, in := range lookalikes {
		if out, rep := r.Text(in); out != in {
			t.Errorf("look-alike redacted: %q -> %q (%v)", in, out, rep.Counts)
		}
	}
}
