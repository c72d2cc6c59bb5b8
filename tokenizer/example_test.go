package tokenizer_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/fieldvault/fieldvault/tokenizer"
)

func ExampleCategory_NewToken() {
	phone, _ := tokenizer.Lookup("contact.phone")
	v, err := phone.Normalize("081-234-5678")
	if err != nil {
		panic(err)
	}
	// Production code passes crypto/rand.Reader. A seeded ChaCha8 keeps
	// this example's output fixed.
	r := rand.NewChaCha8([32]byte{})
	tok, err := phone.NewToken(r, v, tokenizer.Options{})
	if err != nil {
		panic(err)
	}
	f, _ := tokenizer.ParseToken(tok)
	fmt.Println(v, tok, f, phone.Partial(v))

	card, _ := tokenizer.Lookup("financial.card_pan")
	v, _ = card.Normalize("4111 1111 1111 1111")
	tok, _ = card.NewToken(r, v, tokenizer.Options{})
	fmt.Println(tok, tokenizer.LuhnValid(tok), card.Partial(v))

	nid, _ := tokenizer.Lookup("govid.th_national_id")
	_, err = nid.Normalize("1-1017-00230-70-9")
	fmt.Println(err)
	// Output:
	// +66812345678 +66075665678 phone +66•••••5678
	// 6451046162681111 false •••• •••• •••• 1111
	// tokenizer: invalid govid.th_national_id value: checksum mismatch
}
