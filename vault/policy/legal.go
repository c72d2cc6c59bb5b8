package policy

import "github.com/fieldvault/fieldvault/tokenizer"

// DPV IRIs for legal bases (w3c/dpv legal/eu/gdpr; DPV has no Thai
// extension, pdpa-model §1.3).
const (
	dpvGDPR = "https://w3id.org/dpv/legal/eu/gdpr#"

	IRIConsent             = dpvGDPR + "A6-1-a"
	IRIExplicitConsent     = dpvGDPR + "A9-2-a"
	IRIContract            = dpvGDPR + "A6-1-b"
	IRILegalObligation     = dpvGDPR + "A6-1-c"
	IRIVitalInterest       = dpvGDPR + "A6-1-d"
	IRIVitalIncapable      = dpvGDPR + "A9-2-c"
	IRIPublicTask          = dpvGDPR + "A6-1-e"
	IRILegitimateInterest  = dpvGDPR + "A6-1-f"
	IRIMadePublic          = dpvGDPR + "A9-2-e"
	IRILegalClaims         = dpvGDPR + "A9-2-f"
	IRISubstantialInterest = dpvGDPR + "A9-2-g"
	IRIHealthCare          = dpvGDPR + "A9-2-h"
	IRIPublicHealth        = dpvGDPR + "A9-2-i"
	IRIResearch            = dpvGDPR + "A9-2-j"
	IRIEmploymentSocial    = dpvGDPR + "A9-2-b"
	// IRIDataSubjectRight: the DSR ground is a right, not a legal basis.
	IRIDataSubjectRight = "https://w3id.org/dpv#DataSubjectRight"
)

// legalBasis returns the DPV IRI and the PDPA section of a ground at a
// tier; item is the s.26(5) sub-item of the evidence, when known.
func legalBasis(ground string, tier tokenizer.Tier, item string) (string, string) {
	sensitive := tier >= tokenizer.T2
	switch ground {
	case GroundConsent:
		if tier == tokenizer.T2Plus {
			return IRIExplicitConsent, "PDPA s.26 ¶1, ¶3"
		}
		if sensitive {
			return IRIExplicitConsent, "PDPA s.26 ¶1"
		}
		return IRIConsent, "PDPA s.19"
	case GroundContract:
		return IRIContract, "PDPA s.24(3)"
	case GroundLegalObligation:
		if tier == tokenizer.T2Plus {
			return IRILegalObligation, "PDPA s.26 ¶3"
		}
		if sensitive {
			switch item {
			case "a":
				return IRIHealthCare, "PDPA s.26(5)(a)"
			case "b":
				return IRIPublicHealth, "PDPA s.26(5)(b)"
			case "c":
				return IRIEmploymentSocial, "PDPA s.26(5)(c)"
			case "d":
				return IRIResearch, "PDPA s.26(5)(d)"
			case "e":
				return IRISubstantialInterest, "PDPA s.26(5)(e)"
			}
			return IRILegalObligation, "PDPA s.26(5)"
		}
		return IRILegalObligation, "PDPA s.24(6)"
	case GroundAuthorityInstrument:
		if sensitive {
			return IRILegalClaims, "PDPA s.26(4)"
		}
		return IRILegalObligation, "PDPA s.24(6)"
	case GroundVitalInterest:
		if sensitive {
			return IRIVitalIncapable, "PDPA s.26(1)"
		}
		return IRIVitalInterest, "PDPA s.24(2)"
	case GroundPublicTask:
		if sensitive {
			switch item {
			case "b":
				return IRIPublicHealth, "PDPA s.26(5)(b)"
			case "e":
				return IRISubstantialInterest, "PDPA s.26(5)(e)"
			}
			return IRIPublicTask, "PDPA s.26(5)"
		}
		return IRIPublicTask, "PDPA s.24(4)"
	case GroundLegitimateInterest:
		return IRILegitimateInterest, "PDPA s.24(5)"
	case GroundResearchStatistics:
		if sensitive {
			return IRIResearch, "PDPA s.26(5)(d)"
		}
		return IRIResearch, "PDPA s.24(1)"
	case GroundLegalClaims:
		if sensitive {
			return IRILegalClaims, "PDPA s.26(4)"
		}
		return IRILegitimateInterest, "PDPA s.24(5)"
	case GroundMadePublic:
		return IRIMadePublic, "PDPA s.26(3)"
	case GroundDataSubjectRequest:
		return IRIDataSubjectRight, "PDPA s.30, s.31"
	}
	return "", ""
}
