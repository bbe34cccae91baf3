# Compiles libtpms's TPM 2.0 part (the source list of its src/Makefile.am with
# WITH_TPM2 and openssl, without TPM 1.2) into one static archive, for the flags
# build.sh passes. libtpms's own autotools build is not used: it needs autoreconf
# and links test programs against the host's libc.
# Variables: SRC (libtpms source tree), OUT (object dir), CFLAGS, AR.

TPM2 := ACT_spt ACTCommands AlgorithmCap AlgorithmTests AsymmetricCommands \
	AttestationCommands Attest_spt AuditCommands Bits BnConvert BnMath BnMemory \
	Cancel CapabilityCommands Clock ClockCommands CommandAudit \
	CommandCodeAttributes CommandDispatcher ContextCommands Context_spt \
	CryptEccData CryptSelfTest CryptUtil DA DebugHelpers DictionaryCommands \
	DuplicationCommands EACommands EncryptDecrypt_spt Entity Entropy \
	EphemeralCommands ExecCommand Global Handle HashCommands Hierarchy \
	HierarchyCommands IntegrityCommands IoBuffers Locality LocalityPlat \
	ManagementCommands Manufacture Marshal MathOnByteBuffers Memory NVCommands \
	NVDynamic NVMem NVReserved NV_spt Object ObjectCommands Object_spt PCR \
	PlatformACT PlatformData Policy_spt Power PowerPlat PP PPPlat PrimeData \
	PropertyCap RandomCommands Response ResponseCodeProcessing RunCommand \
	Session SessionCommands SessionProcess SigningCommands StartupCommands \
	SymmetricCommands TestingCommands Ticket Time TpmAsn1 TpmSizeChecks \
	TPMCmdp TpmFail Unique Unmarshal Vendor_TCG_Test X509_ECC X509_RSA \
	X509_spt BackwardsCompatibilityObject LibtpmsCallbacks NVMarshal \
	StateMarshal Volatile
OSSL := CryptCmac CryptDes CryptEccKeyExchange CryptEccMain CryptEccSignature \
	CryptHash CryptPrime CryptPrimeSieve CryptRand CryptRsa CryptSmac CryptSym \
	ExpDCache Helpers TpmToOsslDesSupport TpmToOsslMath TpmToOsslSupport
TOP := tpm_tpm2_interface tpm_tpm2_tis disabled_interface tpm_debug \
	tpm_library tpm_memory tpm_nvfile

OBJS := $(TPM2:%=$(OUT)/tpm2/%.o) $(OSSL:%=$(OUT)/tpm2/crypto/openssl/%.o) \
	$(TOP:%=$(OUT)/%.o)

# libtpms relies on OpenSSL's headers for <stdio.h>, which an OpenSSL built
# no-stdio does not include.
DEFS := -include stdio.h -include tpm_library_conf.h -I$(SRC)/src -I$(SRC)/include/libtpms -I$(OUT) \
	-DTPM_LIBTPMS_CALLBACKS -DTPM_NV_DISK -D_POSIX_ -DTPM_POSIX \
	-I$(SRC)/src/tpm2 -I$(SRC)/src/tpm2/crypto -I$(SRC)/src/tpm2/crypto/openssl \
	-DOPENSSL_SUPPRESS_DEPRECATED -DUSE_OPENSSL_FUNCTIONS_SYMMETRIC=1 \
	-DUSE_OPENSSL_FUNCTIONS_EC=1 -DUSE_OPENSSL_FUNCTIONS_ECDSA=1 \
	-DUSE_OPENSSL_FUNCTIONS_RSA=1 -DHAVE_CONFIG_H

$(OUT)/libtpms.a: $(OBJS)
	@rm -f $@
	@$(AR) rcs $@ $(OBJS)

$(OUT)/%.o: $(SRC)/src/%.c $(OUT)/config.h
	@mkdir -p $(dir $@)
	@echo "  CC libtpms/$*.c"
	@$(CC) $(CFLAGS) $(DEFS) -c $< -o $@

# What libtpms's configure would define for this build.
$(OUT)/config.h:
	@mkdir -p $(OUT)
	printf '#define WITH_TPM2 1\n#define USE_OPENSSL_CRYPTO_LIBRARY 1\n' > $@
