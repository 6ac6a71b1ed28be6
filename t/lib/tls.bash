# t/lib/tls.bash: throwaway certificates for the TLS tests (t/tls.bats,
# t/client-tls.bats), made with openssl into $CERTS.

# A CA (key, certificate) named $1 with common name $2.
make_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$CERTS/$1.key" -out "$CERTS/$1.pem" -days 2 \
	    -subj "/CN=$2" 2>/dev/null
}

# A server certificate $1.pem/$1.key signed by CA $2, serial $3, common
# name $4, subjectAltName $5 (by default localhost, 127.0.0.1 and ::1).
make_cert() {
	local san=${5:-DNS:localhost,IP:127.0.0.1,IP:::1}

	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$CERTS/$1.key" -out "$CERTS/$1.csr" -subj "/CN=$4" \
	    2>/dev/null &&
	printf '%s\n' "subjectAltName=$san" 'basicConstraints=CA:FALSE' \
	    'extendedKeyUsage=serverAuth' >"$CERTS/$1.ext" &&
	openssl x509 -req -in "$CERTS/$1.csr" -CA "$CERTS/$2.pem" \
	    -CAkey "$CERTS/$2.key" -set_serial "$3" -days 2 \
	    -extfile "$CERTS/$1.ext" -out "$CERTS/$1.pem" 2>/dev/null
}
