#pragma once
// Whether this build runs under AddressSanitizer (scripts/test_sanitized.sh),
// whose shadow memory takes terabytes of address space: no program of such a
// build can run under an address-space limit, so tests of that limit skip.
namespace dso::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace dso::test
