/*
 * client-tls.c: the client's TLS settings and OpenSSL glue. One context
 * per process (TLS 1.2 minimum, the system store or --ca, verification on
 * unless --insecure); one SSL per connection, checking the host name (or
 * the IP address) the user gave. client-net.c drives the handshake.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client.h"

static SSL_CTX		*ctls_ctx;
static enum ctls_mode	 ctls_mode_now = CTLS_AUTO;
static int		 ctls_insecure;

/* The text of the oldest queued OpenSSL error; the queue is emptied. */
static const char *
ctls_ssl_error(char *buf, size_t len)
{
	unsigned long	e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else {
		ERR_error_string_n(e, buf, len);
		ERR_clear_error();
	}
	return (buf);
}

/*
 * Set the TLS mode for every connection of this process, with the CA file
 * (NULL: the system store) and whether to skip verification. Prints the
 * reason and returns -1 if the CA file cannot be used.
 */
int
ctls_init(enum ctls_mode mode, const char *ca, int insecure)
{
	FILE	*f;
	char	 ebuf[256];

	ctls_mode_now = mode;
	ctls_insecure = insecure;
	if (mode == CTLS_OFF)
		return (0);
	if ((ctls_ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		fprintf(stderr, "mychat: SSL_CTX_new: %s\n",
		    ctls_ssl_error(ebuf, sizeof(ebuf)));
		return (-1);
	}
	SSL_CTX_set_min_proto_version(ctls_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctls_ctx, SSL_OP_NO_RENEGOTIATION);
	if (insecure) {
		SSL_CTX_set_verify(ctls_ctx, SSL_VERIFY_NONE, NULL);
		return (0);
	}
	SSL_CTX_set_verify(ctls_ctx, SSL_VERIFY_PEER, NULL);
	if (ca == NULL) {
		if (SSL_CTX_set_default_verify_paths(ctls_ctx) != 1) {
			fprintf(stderr, "mychat: the system's CA store: %s\n",
			    ctls_ssl_error(ebuf, sizeof(ebuf)));
			goto fail;
		}
		return (0);
	}
	/* fopen first: OpenSSL's text for a missing file is obscure */
	if ((f = fopen(ca, "r")) == NULL) {
		fprintf(stderr, "mychat: %s: %s\n", ca, strerror(errno));
		goto fail;
	}
	fclose(f);
	if (SSL_CTX_load_verify_locations(ctls_ctx, ca, NULL) != 1) {
		fprintf(stderr, "mychat: %s: no usable CA certificate: %s\n",
		    ca, ctls_ssl_error(ebuf, sizeof(ebuf)));
		goto fail;
	}
	return (0);
fail:
	SSL_CTX_free(ctls_ctx);
	ctls_ctx = NULL;
	return (-1);
}

/* Free the context (connections hold their own reference). */
void
ctls_free(void)
{
	SSL_CTX_free(ctls_ctx);
	ctls_ctx = NULL;
}

/* The TLS mode of this process. */
enum ctls_mode
ctls_mode(void)
{
	return (ctls_mode_now);
}

/*
 * A new SSL for a connection to host: SNI and a name check for a host
 * name, an address check for an IP literal. NULL with why filled.
 */
SSL *
ctls_ssl_new(const char *host, char *why, size_t len)
{
	SSL		*ssl;
	unsigned char	 addr[sizeof(struct in6_addr)];
	char		 ebuf[256];
	int		 is_ip;

	if (ctls_ctx == NULL) {
		snprintf(why, len, "TLS is not set up");
		return (NULL);
	}
	if ((ssl = SSL_new(ctls_ctx)) == NULL) {
		snprintf(why, len, "SSL_new: %s",
		    ctls_ssl_error(ebuf, sizeof(ebuf)));
		return (NULL);
	}
	is_ip = inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1;
	/* SNI carries host names only (RFC 6066, section 3) */
	if (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1)
		goto sslerr;
	if (!ctls_insecure) {
		if (is_ip) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
			    host) != 1)
				goto sslerr;
		} else {
			SSL_set_hostflags(ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(ssl, host) != 1)
				goto sslerr;
		}
	}
	return (ssl);
sslerr:
	snprintf(why, len, "%s: %s", host, ctls_ssl_error(ebuf, sizeof(ebuf)));
	SSL_free(ssl);
	return (NULL);
}

/* Free an SSL that no bufferevent took. */
void
ctls_ssl_free(SSL *ssl)
{
	SSL_free(ssl);
}

/* Say close_notify, without waiting for the server's (non-blocking). */
void
ctls_shutdown(SSL *ssl)
{
	(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

/* The text of an OpenSSL error code. */
void
ctls_strerror(unsigned long e, char *buf, size_t len)
{
	ERR_error_string_n(e, buf, len);
}

/* Did the server's certificate fail the check? */
int
ctls_verify_failed(SSL *ssl)
{
	return (!ctls_insecure && ssl != NULL &&
	    SSL_get_verify_result(ssl) != X509_V_OK);
}

/*
 * Why a handshake failed: the certificate check first (that is what the
 * user can act on), else OpenSSL's error.
 */
void
ctls_handshake_error(SSL *ssl, unsigned long e, char *why, size_t len)
{
	long	v;
	char	ebuf[256];

	if (ctls_verify_failed(ssl)) {
		v = SSL_get_verify_result(ssl);
		snprintf(why, len, "certificate verification failed: %s%s",
		    X509_verify_cert_error_string(v),
		    v == X509_V_ERR_HOSTNAME_MISMATCH ||
		    v == X509_V_ERR_IP_ADDRESS_MISMATCH ?
		    " (the certificate is for another server)" :
		    " (see --ca in mychat(1))");
		return;
	}
	if (e != 0)
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
	else
		snprintf(ebuf, sizeof(ebuf), "unknown error");
	/* the usual cause: --tls to the plain port, which answers in clear */
	snprintf(why, len, "TLS handshake failed: %s%s", ebuf,
	    ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER &&
	    ctls_mode_now == CTLS_IMPLICIT ? " (is this the server's TLS "
	    "port? without --tls mychat uses STARTTLS)" : "");
}

/* "TLSv1.3 TLS_AES_256_GCM_SHA384, certificate verified" and the like. */
void
ctls_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s, %s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl), ctls_insecure ?
	    "certificate NOT verified (--insecure)" : "certificate verified");
}
